// How well an SAE stands in for the activation it reads, over a set of prompts: L0, explained
// variance, and the cross-entropy loss recovered when the reconstruction replaces the activation
// (SAELens' evals: ce_loss_score = (CE zero-ablated - CE spliced) / (CE zero-ablated - CE clean)).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/base/result.h"
#include "core/features/sae.h"

namespace ms {

class Model;

struct SaeMetrics {
  int64_t n_prompts = 0;
  int64_t n_tokens = 0;       // positions whose activation was encoded
  int64_t n_predictions = 0;  // next-token predictions the CE losses average over
  double l0 = 0;              // mean number of features > 0 per position
  // 1 - mean |x - x_hat|^2 / mean |x - mean(x)|^2 over every position (SAELens'
  // metrics/explained_variance; the mean of x is over all positions of all prompts).
  double explained_variance = 0;
  double mse = 0;  // mean over positions and d_out of (x - x_hat)^2
  double ce_clean = 0, ce_spliced = 0, ce_zero_ablated = 0;  // nats per prediction
  double ce_loss_recovered = 0;
  int64_t dead_features = 0;  // never above zero on these prompts
};

// prompts: token ids, each at least 2 long. The spliced run replaces the activation with the
// reconstruction (no error term); the ablated run sets it (or the SAE's head) to zero. For a
// transcoder the activation is the one at its output point (explained variance and the ablation
// are there).
Result<SaeMetrics> sae_metrics(const Model& model, std::shared_ptr<const Sae> sae,
                               const std::vector<std::vector<int32_t>>& prompts);

}  // namespace ms
