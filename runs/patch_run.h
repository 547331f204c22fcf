// Activation patching as a stored run: its parameters (patch_spec: the task's, what,
// per_position) and the one function `mechscope patch`, batch jobs and the workbench call.
#pragma once

#include <nlohmann/json.hpp>

#include "runs/circuit_runs.h"
#include "runs/run_session.h"
#include "runs/task_run.h"

namespace ms {

const AnalysisSpec& patch_spec();

struct PatchRunOutcome {
  int64_t run_id = 0;
  bool cancelled = false;
  nlohmann::json params;  // completed and canonical
  nlohmann::json counts;  // n_pairs, survived, generated
  PatchRun run;           // grid, DLA, token labels
};

// Completes and checks params (usage error naming the parameter), makes the task, and stores a
// "patch" run through the session: the spec's parameters and the pair counts; the task's inputs and
// tokens; the grid (normalised and raw; per-head scores for layer x head grids) and DLA.
PatchRunOutcome run_patch(RunSession& session, const Model& m, nlohmann::json params);

}  // namespace ms
