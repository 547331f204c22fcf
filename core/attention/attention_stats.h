// Streaming attention statistics: an AttentionObserver that accumulates, per layer and head, how
// much attention each key receives and, per query, the entropy, the most attended key and its
// weight, block by block, in O(layers x heads x T) memory. Sinks, retrieval and head detectors
// all read attention through this one component.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "core/attention/attention_observer.h"

namespace ms {

struct AttentionStatsOptions {
  bool per_query = true;  // entropy, argmax and max weight per query (else key statistics only)
};

class AttentionStats : public AttentionObserver {
 public:
  // positions: the keys and queries the pass will cover (prompt length, or prefill + decode).
  AttentionStats(int64_t n_layers, int64_t n_heads, int64_t batch, int64_t positions,
                 AttentionStatsOptions opts = {});

  void on_block(AttentionBlock& block) override;
  // Statistics only: the forward pass computes them in the fused kernel's pass.
  bool fused_stats(int64_t layer, int64_t q_begin, int64_t n_queries, int64_t sliding_window,
                   FusedAttentionStats& out) override;

  // (layer, batch, head, key): sum over the queries that saw key k of A[i, k].
  const at::Tensor& key_mass() const { return m_key_mass; }
  // (key): how many queries could see key k (the same for every layer and head).
  const at::Tensor& key_visible() const { return m_key_visible; }
  // (layer, batch, head, key): key importance alpha_k = key_mass / key_visible (Gu et al.): the
  // mean attention key k receives from the queries that can see it. 0 where none could.
  at::Tensor alpha() const;
  // (layer, batch, head, query): entropy in nats; most attended key (absolute position); its
  // weight. Filled for the queries the pass covered.
  const at::Tensor& entropy() const { return m_entropy; }
  const at::Tensor& argmax() const { return m_argmax; }
  const at::Tensor& max_weight() const { return m_max_weight; }
  // (layer, batch, head): total attention on the given keys, averaged over the covered queries
  // (the sink mass of a set of sink positions).
  at::Tensor mass_on(const at::Tensor& keys) const;

 private:
  at::Tensor m_key_mass, m_key_visible, m_entropy, m_argmax, m_max_weight, m_queries_seen;
  bool m_per_query;
};

}  // namespace ms
