// launch_retrieval and launch_heads: the retrieval-head grid and the head detectors as workbench
// tasks, run and stored by run_retrieval / run_heads (runs/retrieval_run.h, runs/heads_run.h)
// exactly as `mechscope retrieval` / `mechscope heads` and batch jobs store them.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "runs/heads_run.h"
#include "runs/retrieval_run.h"
#include "views/analyses.h"
#include "views/analyses_task.h"
#include "views/workbench.h"

namespace ms::views {

std::string default_needles_file(const std::string& model_path) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(model_path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (p.filename() == "default" && p.parent_path().filename() == "models") {
    fs::path f = p.parent_path().parent_path() / "needles" / "default-model.jsonl";
    if (fs::exists(f)) return f.string();
  }
  const char* generic = "resources/needles/default.jsonl";
  return fs::exists(generic) ? generic : "";
}

void launch_retrieval(Workbench& wb, nlohmann::json params) {
  auto model = wb.model();
  // Models without a tokenizer take token-id needles (core/analysis/retrieval/needle.h): no file.
  if (model && model->tokenizer() && !params.contains("needles")) params["needles"] = default_needles_file(wb.model_path());
  if (!launch_ready(wb, retrieval_spec(), "Retrieval analysis", params)) return;
  const std::string command = reproduce_command(retrieval_spec(), params, {{"--model", wb.model_path()}});
  start_run_task(wb, "retrieval analysis", "cells", command, [model, params](RunSession& session) {
    RetrievalRunOutcome r = run_retrieval(session, *model, params);
    if (r.cancelled) return std::string("cancelled");
    return "stored as run " + std::to_string(r.run_id) + "; retrieval heads " + heads_text(r.retrieval_heads);
  });
}

void launch_heads(Workbench& wb, const HeadsParams& hp) {
  nlohmann::json params = hp.params;
  if (!launch_ready(wb, heads_spec(), "Head detectors", params)) return;
  auto model = wb.model();
  std::vector<PromptRecord> records;
  std::vector<std::pair<std::string, std::string>> inputs = {{"--model", wb.model_path()}};
  try {
    if (hp.on_prompt || !hp.prompts_file.empty()) records = launch_records(wb, *model, hp.prompts_file, &inputs);
  } catch (const std::exception& e) {
    wb.show_error("Head detectors", e.what());
    return;
  }
  const std::string command = reproduce_command(heads_spec(), params, inputs);
  start_run_task(wb, "head detectors (" + params["detect"].get<std::string>() + ")", "passes", command,
                 [model, records, params](RunSession& session) {
    HeadsRunOutcome r = run_heads(session, *model, records, params);
    return r.cancelled ? std::string("cancelled") : "stored as run " + std::to_string(r.run_id);
  });
}

}  // namespace ms::views
