// Training an SAE or transcoder as a stored run: its parameters (sae_train_spec), and the one
// function `mechscope sae train` and batch jobs call. The run stores its parameters (the output
// folder among them), the training curve and the final metrics (core/features/sae_metrics.h on
// held-out prompts) as tensors; the SAE itself is the SAELens folder written at `out`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/features/sae_metrics.h"
#include "core/features/sae_train.h"
#include "core/io/prompts.h"
#include "runs/analysis_spec.h"
#include "runs/run_session.h"

namespace ms {

const AnalysisSpec& sae_train_spec();

// The columns of the stored "training_curve" tensor [points, 9] and "final_metrics" [10].
extern const std::vector<std::string> kSaeCurveColumns;
extern const std::vector<std::string> kSaeMetricColumns;

struct SaeTrainRunOutcome {
  int64_t run_id = 0;
  bool cancelled = false;  // interrupted: a checkpoint is in <out>/checkpoints; rerun with resume
  nlohmann::json params;   // completed and canonical
  SaeTrainResult train;
  SaeMetrics metrics;
  int64_t n_train_tokens = 0, n_train_prompts = 0, n_eval_prompts = 0;
  bool store_on_disk = false;
  std::string out;  // the SAELens folder written
};

// Completes and checks params (usage error naming the parameter), collects the activations of the
// training prompts (every prompt but the last eval_prompts, cut to context_size), trains, writes
// the SAELens folder to `out` (checkpoints in out/checkpoints), measures L0 / explained variance /
// CE loss recovered on the held-out prompts (all of them when there are too few to hold out) and
// stores a "sae-train" run. Progress counts prompts collected, then training steps.
SaeTrainRunOutcome run_sae_train(RunSession& session, const Model& m, const std::vector<PromptRecord>& records,
                                 nlohmann::json params);

}  // namespace ms
