// launch_patch, launch_circuit and launch_sae_circuit: activation patching and circuit discovery
// as workbench tasks, run and stored by run_patch / run_circuit / run_dsae_circuit (runs/patch_run.h,
// runs/circuit_run.h, runs/dsae_circuit_run.h) exactly as `mechscope patch` / `mechscope circuit` /
// `mechscope sae circuit` and batch jobs store them.
#include "runs/circuit_run.h"
#include "runs/dsae_circuit_run.h"
#include "runs/patch_run.h"
#include "views/analyses.h"
#include "views/analyses_task.h"
#include "views/workbench.h"

namespace ms::views {
void launch_patch(Workbench& wb, const nlohmann::json& given) {
  nlohmann::json params = given;
  if (!launch_ready(wb, patch_spec(), "Activation patching", params)) return;
  auto model = wb.model();
  const std::string command = reproduce_command(patch_spec(), params, {{"--model", wb.model_path()}});
  start_run_task(wb, "activation patching (" + params["what"].get<std::string>() + ")", "cells", command,
                 [model, params](RunSession& session) {
    PatchRunOutcome r = run_patch(session, *model, params);
    return r.cancelled ? std::string("cancelled") : "stored as run " + std::to_string(r.run_id);
  });
}

void launch_circuit(Workbench& wb, const nlohmann::json& given) {
  nlohmann::json params = given;
  if (!launch_ready(wb, circuit_spec(), "Circuit discovery", params)) return;
  auto model = wb.model();
  const std::string command = reproduce_command(circuit_spec(), params, {{"--model", wb.model_path()}});
  start_run_task(wb, "circuit discovery (" + params["method"].get<std::string>() + ")", "steps", command,
                 [model, params](RunSession& session) {
    CircuitRunOutcome r = run_circuit(session, *model, params);
    if (r.cancelled) return std::string("cancelled");
    return "stored as run " + std::to_string(r.run_id) + ": " + std::to_string(r.run.circuit.edges.size()) + " edges";
  });
}

void launch_sae_circuit(Workbench& wb, const nlohmann::json& given) {
  nlohmann::json params = given;
  if (!launch_ready(wb, dsae_circuit_spec(), "Discrete-SAE circuit", params)) return;
  auto model = wb.model();
  const std::string command = reproduce_command(dsae_circuit_spec(), params, {{"--model", wb.model_path()}});
  start_run_task(wb, "discrete-SAE circuit", "steps", command, [model, params](RunSession& session) {
    DsaeCircuitOutcome r = run_dsae_circuit(session, *model, params);
    if (r.cancelled) return std::string("cancelled");
    return "stored as run " + std::to_string(r.run_id) + ": " + std::to_string(r.heads.size()) + " heads";
  });
}

}  // namespace ms::views
