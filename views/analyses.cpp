// launch_sinks: the sink analysis as a task that stores its run (the same results as
// `mechscope sinks`: inputs, sink_rate, alpha0, sink_mass, hidden_sinks).
#include "views/analyses.h"

#include <nlohmann/json.hpp>

#include "core/io/prompts.h"
#include "core/analysis/sinks/sinks.h"
#include "core/tokenizer/token_label.h"
#include "runs/analysis_runs.h"
#include "views/workbench.h"

namespace ms::views {

void launch_sinks(Workbench& wb, const SinksParams& params) {
  auto model = wb.model();
  if (!model) {
    wb.show_error("Sinks analysis", "open a model first");
    return;
  }
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> texts;
  try {
    if (!params.prompts_file.empty()) {
      Result<std::vector<PromptRecord>> r = read_prompts(params.prompts_file);
      if (!r) throw InputError(r.error().message);
      for (const auto& p : *r) {
        prompts.push_back(p.tokens.empty() ? prompt_ids(*model, p.text) : p.tokens);
        texts.push_back(p.text);
      }
    } else {
      prompts.push_back(prompt_ids(*model, wb.prompt));
      texts.push_back(wb.prompt);
    }
  } catch (const std::exception& e) {
    wb.show_error("Sinks analysis", e.what());
    return;
  }
  SinkOptions so;
  so.epsilon = params.epsilon;
  so.hidden_threshold = params.hidden_threshold;
  std::string db_path = resolve_db_path(wb.db_path);
  auto finished = wb.runs_stored_counter();
  wb.tasks().start("sinks analysis (" + std::to_string(prompts.size()) + " prompts)",
                   [model, prompts, texts, so, db_path, finished](TaskContext& ctx) {
    auto db = Database::open(db_path);  // this thread's own connection
    if (!db) throw std::runtime_error(db.error().message);
    Result<int64_t> mid = (*db)->register_model(*model);
    if (!mid) throw std::runtime_error(mid.error().message);
    nlohmann::json params = {{"epsilon", so.epsilon},
                             {"hidden_threshold", "abs:" + std::to_string(so.hidden_threshold)},
                             {"n_prompts", prompts.size()}};
    RunSpec spec("sinks", *mid, params.dump());
    spec.command = "mechscope gui (Analyses window)";
    Result<int64_t> run = (*db)->begin_run(spec);
    if (!run) throw std::runtime_error(run.error().message);
    try {
      SinkReport rep = analyze_sinks(*model, prompts, so, [&](int64_t done, int64_t total) {
        ctx.set_progress(double(done) / double(total));
        ctx.set_status(std::to_string(done) + " / " + std::to_string(total) + " prompts");
        (void)(*db)->set_progress(*run, double(done) / double(total));
      }, ctx.cancel_flag());
      if (ctx.cancelled()) {
        (void)(*db)->cancel_run(*run, "cancelled in the workbench after " + std::to_string(rep.n_prompts) + " prompts");
        finished->fetch_add(1);
        ctx.set_status("cancelled");
        return;
      }
      RunResults res = sink_run_results(rep, texts, prompts, [&](int32_t id) { return token_label(*model, id); });
      Status st = (*db)->finish_run(*run, res);
      if (!st) throw std::runtime_error(st.error().message);
    } catch (const std::exception& e) {
      (void)(*db)->fail_run(*run, e.what());
      finished->fetch_add(1);
      throw;
    }
    ctx.set_status("stored as run " + std::to_string(*run));
    finished->fetch_add(1);
  });
}

}  // namespace ms::views
