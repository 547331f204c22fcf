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

// Runs fn (which stores a run and returns "stored as run N" or "cancelled") on a task with its own
// database connection; counts the stored run so the lists refresh.
void start_stored_task(Workbench& wb, const std::string& name,
                       std::function<std::string(Database&, TaskContext&)> fn) {
  std::string db_path = resolve_db_path(wb.db_path);
  auto stored = wb.runs_stored_counter();
  wb.tasks().start(name, [db_path, stored, fn](TaskContext& ctx) {
    auto db = Database::open(db_path);  // this thread's own connection
    if (!db) throw std::runtime_error(db.error().message);
    try {
      std::string status = fn(**db, ctx);
      stored->fetch_add(1);
      ctx.set_status(status);
    } catch (...) {
      stored->fetch_add(1);  // a failed run is stored too
      throw;
    }
  });
}

RunProgress task_progress(TaskContext& ctx, const char* unit) {
  return [&ctx, unit](int64_t done, int64_t total) {
    ctx.set_progress(static_cast<double>(done) / static_cast<double>(std::max<int64_t>(total, 1)));
    ctx.set_status(std::to_string(done) + " / " + std::to_string(total) + " " + unit);
  };
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
  start_stored_task(wb, "retrieval analysis", [model, cfg](Database& db, TaskContext& ctx) {
    Result<RetrievalRunOutcome> r = run_retrieval_stored(db, *model, cfg, task_progress(ctx, "cells"), ctx.cancel_flag());
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
  start_stored_task(wb, "head detectors (" + detect + ")",
                    [model, tokens, patterns, pj](Database& db, TaskContext& ctx) {
    Result<HeadsRunOutcome> r = run_heads_stored(db, *model, tokens, patterns, DetectOptions{}, pj.dump(),
                                                 "mechscope gui (Analyses window)", task_progress(ctx, "detectors"),
                                                 ctx.cancel_flag());
    if (!r) throw std::runtime_error(r.error().message);
    return r->cancelled ? std::string("cancelled") : "stored as run " + std::to_string(r->run_id);
  });
}

}  // namespace ms::views
