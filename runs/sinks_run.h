// The attention-sink analysis as a stored run: its parameters (sinks_spec) and the one function
// `mechscope sinks`, the batch adapter and the workbench all call, so they store the same run.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "core/analysis/sinks/sinks.h"
#include "core/io/prompts.h"
#include "runs/analysis_spec.h"
#include "runs/run_session.h"

namespace ms {

struct SinksRunOutcome {
  int64_t run_id = 0;
  bool cancelled = false;  // the session was interrupted; the run is cancelled (live) or not stored
  SinkReport report;
  nlohmann::json params;       // the parameters as given, completed and canonical
  nlohmann::json calibration;  // null without calibrate: run_id, heads, beta, loss_before/after, accuracy_*
};

// Completes and checks params against sinks_spec (usage error naming the parameter), tokenizes the
// records, runs the analysis with the session's progress and cancel, and stores a "sinks" run:
// parameters epsilon, hidden_threshold, max_tokens, n_prompts; inputs with token labels; per-head
// sink_rate, alpha0, sink_mass, hidden_sinks; the sink-rate curve and first-token alphas. With
// calibrate, ACT's calibration (listed heads, or the search) is stored as a "sinks-calibration"
// run linked to it.
SinksRunOutcome run_sinks(RunSession& session, const Model& m, const std::vector<PromptRecord>& records,
                          nlohmann::json params);

// The results run_sinks stores (the report on the prompts, labelled by token_label).
RunResults sink_run_results(const SinkReport& rep, const std::vector<std::string>& texts,
                            const std::vector<std::vector<int32_t>>& prompts, const Model& m);

}  // namespace ms
