// Measuring the mechanisms the trained zoo should contain, on fresh data: induction scores on
// repeated random tokens, the loss on the repeated half, Wu et al.'s retrieval (copy-paste) head
// score on needle episodes, and answer accuracy with retrieval heads or random heads ablated.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/head_ref.h"
#include "core/model/model.h"
#include "core/base/result.h"
#include "core/zoo/zoo_tasks.h"

namespace ms {

// Heads whose score is at least threshold, best first, at most max_heads (0: no limit).
std::vector<HeadRef> top_heads(const at::Tensor& scores, double threshold, int64_t max_heads = 0);

// On the probe tokens [B, start + 2 * half] (start = 1 with BOS): per head, the mean attention
// from each query of the second copy to the token after the same token's first occurrence
// (query q, key q - half + 1): Olsson et al.'s induction score. [n_layers, n_heads] float64.
Result<at::Tensor> induction_scores(const Model& model, const at::Tensor& probe, int64_t half);

// Mean next-token loss on the probe's second copy (from its 2nd token, the predictable ones) and
// on its first copy (random, about ln(vocabulary) for a model that learnt the task).
struct RepeatLoss {
  double repeated = 0;
  double first = 0;
};
Result<RepeatLoss> repeat_loss(const Model& model, const at::Tensor& probe, int64_t half);

struct RetrievalFigures {
  at::Tensor scores;          // [n_layers, n_heads] float64
  double accuracy = 0;        // answer tokens predicted (top-1) / answer tokens
  int64_t answer_tokens = 0;
};
// Wu et al.'s retrieval score: for each answer token that the model predicts (top-1) from the
// position before it, a head scores when its top-1 attention from that position lands on the
// needle token being copied; the score is its share of all answer tokens. Episodes are batched,
// padded on the right with pad.
Result<RetrievalFigures> retrieval_scores(const Model& model, const std::vector<Episode>& episodes,
                                          int32_t pad);

// Top-1 accuracy on the answer tokens with the given heads zero-ablated (their hook_z set to 0).
Result<double> answer_accuracy(const Model& model, const std::vector<Episode>& episodes, int32_t pad,
                               const std::vector<HeadRef>& ablated = {});

struct AblationFigures {
  std::vector<HeadRef> heads;                   // the retrieval heads ablated together
  double baseline = 0;                         // no ablation
  double retrieval_ablated = 0;                // those heads ablated
  std::vector<std::vector<HeadRef>> random_sets;  // as many other heads, drawn at random
  std::vector<double> random_ablated;          // accuracy with each random set ablated
  double random_ablated_mean = 0;
};
// Ablates `heads` and then n_random sets of as many heads drawn (seeded) from the other heads.
Result<AblationFigures> ablation_test(const Model& model, const std::vector<Episode>& episodes,
                                      int32_t pad, const std::vector<HeadRef>& heads, int64_t n_random,
                                      uint64_t seed);

}  // namespace ms
