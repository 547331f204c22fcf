// The logit lens (nostalgebraist, 2020): the model's final norm and unembedding applied to the
// residual stream after each layer, read as next-token predictions. The workbench's Logit lens
// window shows it; the final layer's lens is the model's own prediction.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "core/model/model.h"

namespace ms {

class LogitLens {
 public:
  // Converts the final norm and W_U (b_U) to float32 on the CPU once.
  explicit LogitLens(const Model& model);
  // Hooks that keep batch item 0's residual stream after every layer (blocks.*.hook_resid_post),
  // (pos, d_model) on the CPU, for the pass that runs with them.
  void attach(HookRegistry& hooks);
  // The residual stream kept for a layer (undefined before the pass).
  const at::Tensor& residual(int64_t layer) const { return m_resid[static_cast<size_t>(layer)]; }
  // (..., d_model) -> (..., d_vocab) float32 logits: ln_final (core/model/norm.h) then W_U, b_U.
  at::Tensor logits(const at::Tensor& resid) const;
  // Top-1 token and its softmax probability at every position of resid (pos, d_model):
  // ids (pos) int64 and probs (pos) float32.
  struct Top1 {
    at::Tensor ids, probs;
  };
  Top1 top1(const at::Tensor& resid) const;
  // The k most likely tokens at every position (ids (pos, k) int64, probs (pos, k) float32, best
  // first) and, for target ids (pos) int64 (the actual next tokens; -1 where there is none), each
  // target's probability and rank (1 = the top token; ties counted in its favour: 1 + the number
  // of tokens strictly more likely). Rank and probability are -1 where the target is -1.
  struct TopK {
    at::Tensor ids, probs, target_rank, target_prob;
  };
  TopK topk(const at::Tensor& resid, int64_t k, const at::Tensor& targets) const;

 private:
  const Model& m_model;
  at::Tensor m_wu, m_bu, m_ln_w, m_ln_b;  // float32, CPU
  std::vector<at::Tensor> m_resid;
};

}  // namespace ms
