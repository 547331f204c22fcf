// Circuit discovery as a stored run: its parameters (circuit_spec: the task's, method, selection,
// ACDC and EAP-IG settings, receivers, evaluate, circuit_name) and the one function `mechscope
// circuit`, batch jobs and the workbench call.
#pragma once

#include <nlohmann/json.hpp>

#include "runs/circuit_runs.h"
#include "runs/run_session.h"
#include "runs/task_run.h"

namespace ms {

const AnalysisSpec& circuit_spec();
// The CircuitOptions of completed parameters (threshold 0: select by top_n).
CircuitOptions circuit_options(const nlohmann::json& p);

struct CircuitRunOutcome {
  int64_t run_id = 0;
  bool cancelled = false;
  nlohmann::json params;  // completed and canonical
  nlohmann::json counts;  // n_pairs, survived, generated
  int64_t n_edges_total = 0;
  CircuitRun run;  // scores, kept edges, circuit, faithfulness, DLA
};

// Completes and checks params (usage error naming the parameter), makes the task, runs the method
// and stores a "circuit" run through the session: the spec's parameters and the pair counts, the
// task's inputs and tokens, the circuit (its meta with acdc_tested for ACDC), edge scores,
// per-head scores, DLA.
CircuitRunOutcome run_circuit(RunSession& session, const Model& m, nlohmann::json params);

}  // namespace ms
