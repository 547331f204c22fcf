// Incremental decoding with the KV cache: one prefill, then one position per step; hooks fire
// on the new positions only.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <random>

#include "core/model/model.h"

namespace ms {

std::vector<int32_t> Model::generate(const std::vector<int32_t>& prompt, const GenerateOptions& o) const {
  if (prompt.empty()) fail_usage("generate needs at least one prompt token");
  std::vector<int32_t> out;
  if (o.max_new <= 0) return out;
  int64_t capacity = static_cast<int64_t>(prompt.size()) + o.max_new;
  if (m_cfg.pos == PosKind::kLearned && capacity > m_cfg.n_ctx) capacity = m_cfg.n_ctx;
  if (static_cast<int64_t>(prompt.size()) >= capacity)
    fail_input("prompt of " + std::to_string(prompt.size()) + " tokens leaves no room in the model's " +
               std::to_string(m_cfg.n_ctx) + " positions");
  KVCache cache = make_cache(1, capacity);
  ForwardOptions fo;
  fo.hooks = o.hooks;
  fo.cache = &cache;
  fo.last_logits_only = true;
  std::mt19937_64 rng(o.seed);
  at::Tensor input = tokens_tensor(prompt);
  while (static_cast<int64_t>(out.size()) < o.max_new && cache.length < capacity) {
    at::Tensor logits = forward(input, fo).view({-1}).to(at::kCPU);  // (d_vocab)
    int32_t next;
    if (o.greedy || o.temperature <= 0) {
      next = static_cast<int32_t>(logits.argmax().item<int64_t>());
    } else {
      at::Tensor l = logits.to(at::kDouble) / o.temperature;
      if (o.top_k > 0 && o.top_k < l.size(0)) {
        at::Tensor kth = std::get<0>(l.topk(o.top_k)).min();
        l = l.masked_fill(l < kth, -std::numeric_limits<double>::infinity());
      }
      at::Tensor p = at::softmax(l, 0).contiguous();
      const double* pp = p.data_ptr<double>();
      std::discrete_distribution<int32_t> dist(pp, pp + p.numel());
      next = dist(rng);
    }
    out.push_back(next);
    if (o.on_token && !o.on_token(next)) break;
    if (o.stop_at_eos && m_cfg.eos_token_id >= 0 && next == m_cfg.eos_token_id) break;
    input = tokens_tensor({next});
  }
  return out;
}

}  // namespace ms
