// Streaming attention statistics accumulated block by block.
#include "core/attention/attention_stats.h"

#include <ATen/ATen.h>

#include "core/attention/visibility.h"

namespace ms {

at::Tensor visible_keys(const AttentionBlock& b) {
  return visibility_mask(b.q_begin, b.n_queries, b.k_begin, b.n_keys, b.sliding_window,
                         b.pattern.defined() ? b.pattern.device() : c10::Device(c10::kCPU));
}

AttentionStats::AttentionStats(int64_t n_layers, int64_t n_heads, int64_t batch, int64_t positions,
                               AttentionStatsOptions opts)
    : m_per_query(opts.per_query) {
  auto f = at::TensorOptions().dtype(at::kFloat);
  m_key_mass = at::zeros({n_layers, batch, n_heads, positions}, f);
  m_key_visible = at::zeros({positions}, at::TensorOptions().dtype(at::kLong));
  m_queries_seen = at::zeros({n_layers}, at::TensorOptions().dtype(at::kLong));
  if (m_per_query) {
    m_entropy = at::zeros({n_layers, batch, n_heads, positions}, f);
    m_argmax = at::full({n_layers, batch, n_heads, positions}, -1, at::TensorOptions().dtype(at::kLong));
    m_max_weight = at::zeros({n_layers, batch, n_heads, positions}, f);
  }
}

void AttentionStats::on_block(AttentionBlock& b) {
  at::Tensor p = b.pattern.to(at::kCPU, at::kFloat);  // (B, H, tb, nk)
  const int64_t l = b.layer;
  m_key_mass[l].narrow(-1, b.k_begin, b.n_keys).add_(p.sum(2));
  if (l == 0)  // visibility is the same in every layer: count it once
    m_key_visible.narrow(0, b.k_begin, b.n_keys).add_(visible_keys(b).sum(0).to(at::kCPU));
  m_queries_seen[l] += b.n_queries;
  if (!m_per_query) return;
  auto [maxw, idx] = p.max(-1);  // (B, H, tb)
  m_max_weight[l].narrow(-1, b.q_begin, b.n_queries).copy_(maxw);
  m_argmax[l].narrow(-1, b.q_begin, b.n_queries).copy_(idx + b.k_begin);
  m_entropy[l].narrow(-1, b.q_begin, b.n_queries).copy_(-at::xlogy(p, p).sum(-1));
}

bool AttentionStats::fused_stats(int64_t l, int64_t q_begin, int64_t n_queries, int64_t window,
                                 FusedAttentionStats& out) {
  const int64_t positions = m_key_mass.size(-1), q_end = q_begin + n_queries;
  if (q_end > positions) return false;  // the materialising path reports it
  out.batch = m_key_mass.size(1);
  out.n_heads = m_key_mass.size(2);
  out.key_mass = m_key_mass[l].data_ptr<float>();
  out.key_positions = out.query_positions = positions;
  if (m_per_query) {
    out.entropy = m_entropy[l].data_ptr<float>();
    out.argmax = m_argmax[l].data_ptr<int64_t>();
    out.max_weight = m_max_weight[l].data_ptr<float>();
  }
  if (l == 0) {  // key k is seen by queries i in [max(k, q_begin), min(q_end, k + window) - 1]
    at::Tensor k = at::arange(0, q_end, at::TensorOptions().dtype(at::kLong));
    at::Tensor lo = k.clamp_min(q_begin), hi = window > 0 ? (k + window).clamp_max(q_end) : at::full_like(k, q_end);
    m_key_visible.narrow(0, 0, q_end).add_((hi - lo).clamp_min(0));
  }
  m_queries_seen[l] += n_queries;
  return true;
}

at::Tensor AttentionStats::alpha() const {
  at::Tensor vis = m_key_visible.to(at::kFloat).clamp_min(1);
  return at::where(m_key_visible > 0, m_key_mass / vis, at::zeros_like(m_key_mass));
}

at::Tensor AttentionStats::mass_on(const at::Tensor& keys) const {
  at::Tensor seen = m_queries_seen.to(at::kFloat).clamp_min(1).view({-1, 1, 1});
  return m_key_mass.index_select(-1, keys.to(at::kLong)).sum(-1) / seen;
}

}  // namespace ms
