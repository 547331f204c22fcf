// launch_sae_heads: direct feature attribution by head for a hook_z SAE as a workbench task, run
// and stored by run_sae_heads (runs/sae_heads_run.h) exactly as `mechscope sae heads` and batch
// jobs store it.
#include <nlohmann/json.hpp>

#include "runs/sae_heads_run.h"
#include "views/analyses.h"
#include "views/analyses_task.h"
#include "views/workbench.h"

namespace ms::views {

void launch_sae_heads(Workbench& wb, const SaeHeadsParams& sp) {
  nlohmann::json params = sp.params;
  if ((!params.contains("sae") || params["sae"] == "") && !wb.sae_path.empty()) params["sae"] = wb.sae_path;
  if (!launch_ready(wb, sae_heads_spec(), "SAE heads", params)) return;
  auto model = wb.model();
  std::vector<PromptRecord> records;
  std::vector<std::pair<std::string, std::string>> inputs = {{"--model", wb.model_path()}};
  try {
    records = launch_records(wb, *model, sp.prompts_file, &inputs);
  } catch (const std::exception& e) {
    wb.show_error("SAE heads", e.what());
    return;
  }
  const std::string command = reproduce_command(sae_heads_spec(), params, inputs);
  start_run_task(wb, "SAE head attribution", "prompts", command, [model, records, params](RunSession& session) {
    SaeHeadsRunOutcome r = run_sae_heads(session, *model, records, params);
    return r.cancelled ? std::string("cancelled") : "stored as run " + std::to_string(r.run_id);
  });
}

}  // namespace ms::views
