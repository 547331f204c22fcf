// Task metrics for interventions: the loss of a continuation and multiple-choice accuracy by
// log-probability, optionally under an attention observer (calibration, head masking) and hooks.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model/model.h"

namespace ms {

// Mean negative log-likelihood (nats per token) of ids[start:] given what precedes each token.
// start >= 1; start == 1 scores every token after the first.
double continuation_loss(const Model& model, const std::vector<int32_t>& ids, int64_t start,
                         const ForwardOptions& opts = {});

// Index of the choice with the highest total log-probability after the prompt.
// Per position of logits [T, V] (or [1, T, V]): logit(answer) - logit(wrong), or logit(answer)
// alone when wrong < 0 (the clean/corrupted prompt pair of the Contributions window).
std::vector<double> logit_diff_per_position(const at::Tensor& logits, int32_t answer, int32_t wrong = -1);
// Per position t: -log p(ids[t + 1] | ids[:t + 1]) in nats; the last position (nothing to
// predict) is NaN. logits [T, V] or [1, T, V], T == ids.size().
std::vector<double> loss_per_position(const at::Tensor& logits, const std::vector<int32_t>& ids);

int best_choice(const Model& model, const std::vector<int32_t>& prompt,
                const std::vector<std::vector<int32_t>>& choices, const ForwardOptions& opts = {});

}  // namespace ms
