// SAE feature dashboards (core/features/sae_dashboard.h) as a stored run of kind "sae-features":
// the parameters declared once (sae_features_spec) and the one function `mechscope sae features`,
// batch jobs and the workbench call, so they store the same run.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/features/sae.h"
#include "core/features/sae_dashboard.h"
#include "core/io/prompts.h"
#include "runs/analysis_spec.h"
#include "runs/run_session.h"

namespace ms {

const AnalysisSpec& sae_features_spec();

struct SaeFeaturesRunOutcome {
  int64_t run_id = 0;
  bool cancelled = false;
  nlohmann::json params;             // completed and canonical
  std::vector<FeatureCard> cards;    // what was stored
  int64_t n_prompts = 0, n_tokens = 0;
  std::shared_ptr<const Sae> sae;
};

// The SAE the parameters name (sae, hook, norm_scaling_factor); InputError (exit 3) naming the
// file when it does not load.
std::shared_ptr<Sae> load_sae_from_params(const nlohmann::json& params);

// Completes and checks params (usage error naming the parameter), loads the SAE, checks it fits the
// model and its feature indices (exit 3), and stores a "sae-features" run through the session: one
// feature card per feature (tables feature_cards / feature_examples) and the inputs the examples
// come from. Stored parameters add the SAE's hook, architecture, d_sae and the corpus size.
// Progress counts prompts.
SaeFeaturesRunOutcome run_sae_features(RunSession& session, const Model& m, const std::vector<PromptRecord>& records,
                                       nlohmann::json params);

}  // namespace ms
