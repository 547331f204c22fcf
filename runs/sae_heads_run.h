// Attention-output SAEs by head (core/features/sae_heads.h) as a stored run of kind "sae-heads":
// the parameters declared once (sae_heads_spec) and the one function `mechscope sae heads`, batch
// jobs and the workbench call, so they store the same run.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/features/sae.h"
#include "core/features/sae_heads.h"
#include "core/io/prompts.h"
#include "runs/analysis_spec.h"
#include "runs/run_session.h"

namespace ms {

const AnalysisSpec& sae_heads_spec();

struct SaeHeadsRunOutcome {
  int64_t run_id = 0;
  bool cancelled = false;
  nlohmann::json params;  // completed and canonical
  SaeHeadsResult result;
  int64_t n_prompts = 0;
  std::shared_ptr<const Sae> sae;
};

// Completes and checks params (usage error naming the parameter), loads the SAE (sae_features_run's
// load_sae_from_params), refuses one that is not on blocks.L.attn.hook_z with every head (exit 3,
// naming the file), and stores a "sae-heads" run through the session:
// - head scores (NaN outside the SAE's layer): "sae_dominated_features" (live features the head
//   dominates) and "sae_activation_share" (the head's share of all the features' activation);
// - tensors "feature_head_fraction" [feature, head], "feature_decoder_fraction" [feature, head] and
//   "feature_head_stats" [feature, 5] (n_firing, act_sum, bias_fraction, dominant_head, dominant_share),
//   "sae_heads_summary" [5] (n_tokens, n_live, n_dominated, n_polysemantic, max_sum_error).
// Stored parameters add the SAE's hook, architecture, d_sae and n_prompts. Progress counts prompts.
SaeHeadsRunOutcome run_sae_heads(RunSession& session, const Model& m, const std::vector<PromptRecord>& records,
                                 nlohmann::json params);

}  // namespace ms
