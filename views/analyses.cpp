// start_run_task, and launch_sinks: the sink analysis as a task that stores its run through
// run_sinks (runs/sinks_run.h), as `mechscope sinks` and batch jobs store it.
#include "views/analyses.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/io/prompts.h"
#include "runs/sinks_run.h"
#include "views/analyses_task.h"
#include "views/forward_result.h"
#include "views/workbench.h"

namespace ms::views {

void start_run_task(Workbench& wb, const std::string& name, const std::string& unit, const std::string& command,
                    std::function<std::string(RunSession&)> fn) {
  std::string db_path = resolve_db_path(wb.db_path);
  auto stored = wb.runs_stored_counter();
  wb.tasks().start(name, [db_path, stored, unit, command, fn](TaskContext& ctx) {
    auto db = Database::open(db_path);  // this thread's own connection
    if (!db) throw std::runtime_error(db.error().message);
    ctx.control().set_listener([&ctx, unit](int64_t done, int64_t total) {
      ctx.set_progress(static_cast<double>(done) / static_cast<double>(std::max<int64_t>(total, 1)));
      ctx.set_status(std::to_string(done) + " / " + std::to_string(total) + " " + unit);
    });
    RunProvenance prov;
    prov.command = command;
    RunSession session(**db, ctx.control(), prov);
    try {
      std::string status = fn(session);
      stored->fetch_add(1);
      ctx.set_status(status);
    } catch (...) {
      stored->fetch_add(1);  // a failed run is stored too
      throw;
    }
  });
}

bool launch_ready(Workbench& wb, const AnalysisSpec& spec, const char* title, nlohmann::json& params) {
  auto model = wb.model();
  if (!model) {
    wb.show_error(title, "open a model first");
    return false;
  }
  std::string param;
  std::string e = complete_params(spec, kInGui, params, &model->config(), &param);
  if (!e.empty()) wb.show_error(title, e);
  return e.empty();
}

std::vector<PromptRecord> launch_records(Workbench& wb, const Model& model, const std::string& prompts_file,
                                         std::vector<std::pair<std::string, std::string>>* inputs) {
  if (!prompts_file.empty()) {
    Result<std::vector<PromptRecord>> r = read_prompts(prompts_file);
    if (!r) throw InputError(r.error().message);
    inputs->push_back({"--prompts", prompts_file});
    return std::move(*r);
  }
  PromptRecord r;
  if (model.tokenizer()) {
    r.text = wb.prompt;
    inputs->push_back({"--text", wb.prompt});
  } else {  // token ids typed into the prompt, as `--tokens`
    r.tokens = prompt_ids(model, wb.prompt);
    std::string ids;
    for (int32_t id : r.tokens) ids += (ids.empty() ? "" : ",") + std::to_string(id);
    inputs->push_back({"--tokens", ids});
  }
  return {r};
}

bool prompts_launch_ready(Workbench& wb, const AnalysisSpec& spec, const char* title, const std::string& prompts_file,
                          nlohmann::json& params, std::vector<PromptRecord>* records, std::string* command) {
  if (!launch_ready(wb, spec, title, params)) return false;
  std::vector<std::pair<std::string, std::string>> inputs = {{"--model", wb.model_path()}};
  try {
    *records = launch_records(wb, *wb.model(), prompts_file, &inputs);
  } catch (const std::exception& e) {
    wb.show_error(title, e.what());
    return false;
  }
  *command = reproduce_command(spec, params, inputs);
  return true;
}

void launch_sinks(Workbench& wb, const SinksParams& sp) {
  nlohmann::json params = sp.params;
  std::vector<PromptRecord> records;
  std::string command;
  if (!prompts_launch_ready(wb, sinks_spec(), "Sinks analysis", sp.prompts_file, params, &records, &command)) return;
  auto model = wb.model();
  start_run_task(wb, "sinks analysis (" + std::to_string(records.size()) + " prompts)", "prompts", command,
                 [model, records, params](RunSession& session) {
    SinksRunOutcome r = run_sinks(session, *model, records, params);
    return r.cancelled ? std::string("cancelled") : "stored as run " + std::to_string(r.run_id);
  });
}

}  // namespace ms::views
