// launch_retrieval and launch_heads: the retrieval-head grid and the head detectors as tasks that
// store their runs through runs/analysis_runs.h, the code `mechscope retrieval` and `mechscope
// heads` use, so the Head grid and Runs windows show the same records the CLI writes.
#include <ATen/ATen.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/analysis/retrieval/needle.h"
#include "runs/analysis_runs.h"
#include "views/analyses.h"
#include "views/analyses_task.h"
#include "views/workbench.h"

namespace ms::views {
namespace {

namespace fs = std::filesystem;

// "a,b c" -> integers; throws naming the bad item.
std::vector<int64_t> parse_lengths(const std::string& text) {
  std::string a = text;
  for (char& ch : a)
    if (ch == ',') ch = ' ';
  std::istringstream in(a);
  std::vector<int64_t> out;
  for (std::string item; in >> item;) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size()) throw InputError("lengths: '" + item + "' is not a whole number");
    out.push_back(v);
  }
  return out;
}

}  // namespace

std::string default_needles_file(const std::string& model_path) {
  fs::path p = fs::path(model_path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (p.filename() == "default" && p.parent_path().filename() == "models") {
    fs::path f = p.parent_path().parent_path() / "needles" / "default-model.jsonl";
    if (fs::exists(f)) return f.string();
  }
  const char* generic = "resources/needles/default.jsonl";
  return fs::exists(generic) ? generic : "";
}

void launch_retrieval(Workbench& wb, const RetrievalParams& params) {
  auto model = wb.model();
  if (!model) {
    wb.show_error("Retrieval analysis", "open a model first");
    return;
  }
  RetrievalRunConfig cfg;
  try {
    cfg.lengths = params.lengths.empty() ? default_lengths_for(model->config().n_ctx) : parse_lengths(params.lengths);
  } catch (const std::exception& e) {
    wb.show_error("Retrieval analysis", e.what());
    return;
  }
  // Models without a tokenizer take token-id needles (core/analysis/retrieval/needle.h id_episodes): no file.
  if (model->tokenizer()) cfg.needles = params.needles.empty() ? default_needles_file(wb.model_path()) : params.needles;
  cfg.depths = params.depths;
  cfg.threshold = params.threshold;
  cfg.mask_top = params.mask_top;
  cfg.command = "mechscope gui (Analyses window)";
  cfg.cancel_note = "cancelled in the workbench; finished cells are kept (mechscope retrieval --resume continues)";
  start_run_task(wb, "retrieval analysis", "cells", cfg.command, [model, cfg](RunSession& session) {
    Result<RetrievalRunOutcome> r = run_retrieval(session.db(), *model, cfg, session.control());
    if (!r) throw std::runtime_error(r.error().message);
    if (r->cancelled) return std::string("cancelled");
    std::string s = "stored as run " + std::to_string(r->run_id) + "; retrieval heads " + heads_text(r->retrieval_heads);
    return s;
  });
}

void launch_heads(Workbench& wb, const HeadsParams& params) {
  auto model = wb.model();
  if (!model) {
    wb.show_error("Head detectors", "open a model first");
    return;
  }
  std::vector<HeadPattern> patterns;
  std::string detect;
  auto add = [&](bool on, HeadPattern p, const char* name) {
    if (!on) return;
    patterns.push_back(p);
    detect += (detect.empty() ? "" : ",") + std::string(name);
  };
  add(params.previous, HeadPattern::kPreviousToken, "previous");
  add(params.duplicate, HeadPattern::kDuplicateToken, "duplicate");
  add(params.induction, HeadPattern::kInduction, "induction");
  if (patterns.empty()) {
    wb.show_error("Head detectors", "choose at least one detector");
    return;
  }
  at::Tensor tokens;
  // The CLI's parameters (mechscope heads defaults: mul, no exclusions) plus, on the prompt, the
  // input it ran on.
  nlohmann::json pj = {{"detect", detect}, {"error_measure", "mul"}, {"exclude_bos", false},
                       {"exclude_current_token", false}};
  try {
    if (params.on_prompt) {
      std::vector<int32_t> ids = prompt_ids(*model, wb.prompt);
      if (ids.size() < 2) throw InputError("the prompt needs at least 2 tokens");
      tokens = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0);
      pj["input"] = "prompt";
      pj["prompt"] = wb.prompt;
    } else {
      Result<at::Tensor> r = repeated_sequences(*model, params.seq_len, params.n, params.seed);
      if (!r) throw InputError(r.error().message);
      tokens = *r;
      pj["seq_len"] = params.seq_len;
      pj["n"] = params.n;
      pj["seed"] = params.seed;
    }
  } catch (const std::exception& e) {
    wb.show_error("Head detectors", e.what());
    return;
  }
  start_run_task(wb, "head detectors (" + detect + ")", "detectors", "mechscope gui (Analyses window)",
                 [model, tokens, patterns, pj](RunSession& session) {
    HeadsRunOutcome r = run_heads(session, *model, tokens, patterns, DetectOptions{}, pj.dump());
    return r.cancelled ? std::string("cancelled") : "stored as run " + std::to_string(r.run_id);
  });
}

}  // namespace ms::views
