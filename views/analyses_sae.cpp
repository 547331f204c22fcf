// launch_sae_train and launch_sae_features: SAE training and feature dashboards as workbench
// tasks, run and stored by run_sae_train / run_sae_features (runs/sae_train_run.h,
// runs/sae_features_run.h) exactly as `mechscope sae train|features` and batch jobs store them;
// launch_sae_heads: direct feature attribution by head for a hook_z SAE (runs/sae_heads_run.h).
#include <cstdio>

#include "runs/sae_features_run.h"
#include "runs/sae_heads_run.h"
#include "runs/sae_train_run.h"
#include "views/analyses.h"
#include "views/analyses_task.h"
#include "views/workbench.h"

namespace ms::views {

void launch_sae_train(Workbench& wb, const SaeLaunchParams& lp) {
  nlohmann::json params = lp.params;
  std::vector<PromptRecord> records;
  std::string command;
  if (!prompts_launch_ready(wb, sae_train_spec(), "SAE training", lp.prompts_file, params, &records, &command)) return;
  auto model = wb.model();
  start_run_task(wb, "SAE training (" + params["arch"].get<std::string>() + " at " + params["hook"].get<std::string>() + ")",
                 "prompts + steps", command, [model, records, params](RunSession& session) {
    SaeTrainRunOutcome r = run_sae_train(session, *model, records, params);
    if (r.cancelled) return std::string("cancelled (a checkpoint is in the output folder; rerun with resume)");
    char ev[64];
    std::snprintf(ev, sizeof(ev), "; L0 %.2f, explained variance %.3f", r.metrics.l0, r.metrics.explained_variance);
    return "stored as run " + std::to_string(r.run_id) + ev + "; wrote " + r.out;
  });
}

void launch_sae_features(Workbench& wb, const SaeLaunchParams& lp) {
  nlohmann::json params = lp.params;
  std::vector<PromptRecord> records;
  std::string command;
  if (!prompts_launch_ready(wb, sae_features_spec(), "SAE feature dashboards", lp.prompts_file, params, &records, &command))
    return;
  auto model = wb.model();
  start_run_task(wb, "SAE feature dashboards (" + std::to_string(records.size()) + " prompts)", "prompts", command,
                 [model, records, params](RunSession& session) {
    SaeFeaturesRunOutcome r = run_sae_features(session, *model, records, params);
    if (r.cancelled) return std::string("cancelled");
    return "stored as run " + std::to_string(r.run_id) + ": " + std::to_string(r.cards.size()) + " feature cards";
  });
}

void launch_sae_heads(Workbench& wb, const SaeLaunchParams& lp) {
  nlohmann::json params = lp.params;
  if ((!params.contains("sae") || params["sae"] == "") && !wb.sae_path.empty()) params["sae"] = wb.sae_path;
  std::vector<PromptRecord> records;
  std::string command;
  if (!prompts_launch_ready(wb, sae_heads_spec(), "SAE heads", lp.prompts_file, params, &records, &command)) return;
  auto model = wb.model();
  start_run_task(wb, "SAE head attribution", "prompts", command, [model, records, params](RunSession& session) {
    SaeHeadsRunOutcome r = run_sae_heads(session, *model, records, params);
    return r.cancelled ? std::string("cancelled") : "stored as run " + std::to_string(r.run_id);
  });
}

}  // namespace ms::views
