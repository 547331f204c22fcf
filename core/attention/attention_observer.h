// The attention observer: what the forward pass shows (and lets change) of each layer's attention,
// one block of queries at a time, so that analyses get attention statistics at long context
// without the T x T pattern of every head ever existing at once.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ms {

// One block of queries of one layer. pattern holds the softmax probabilities of the block's
// queries over the keys [k_begin, k_begin + n_keys) (masked entries are exactly 0).
struct AttentionBlock {
  int64_t layer = 0;
  int64_t q_begin = 0;    // absolute position of the block's first query
  int64_t n_queries = 0;
  int64_t k_begin = 0;    // absolute position of the first key in pattern's last axis
  int64_t n_keys = 0;
  int64_t sliding_window = 0;  // 0: causal only; else query i sees key j iff 0 <= i - j < window
  at::Tensor pattern;     // (batch, n_heads, n_queries, n_keys), float32
};

// (n_queries, n_keys) bool: which keys of the block each query can see (causal, and within the
// sliding window when there is one).
at::Tensor visible_keys(const AttentionBlock& block);

// Where the fused attention kernel writes a layer's statistics, computed in its own pass without
// the pattern ever existing: the observer's float32 / int64 CPU buffers, contiguous, indexed by
// absolute position on the last axis. A null pointer: not wanted.
struct FusedAttentionStats {
  int64_t batch = 0, n_heads = 0;  // the buffers' leading axes (checked against the pass)
  float* key_mass = nullptr;    // (batch, n_heads, key_positions): += sum over the queries of A[i, k]
  int64_t key_positions = 0;
  float* entropy = nullptr;     // (batch, n_heads, query_positions): per query, in nats
  int64_t* argmax = nullptr;    // (batch, n_heads, query_positions): the most attended key (absolute)
  float* max_weight = nullptr;  // (batch, n_heads, query_positions): its weight
  int64_t query_positions = 0;
  int64_t query_offset = 0;     // the per-query buffers start at this absolute position (a decode
                                // step's observer keeps one slot: offset = the step's position)
  bool any() const { return key_mass || entropy || argmax || max_weight; }
};

class AttentionObserver {
 public:
  virtual ~AttentionObserver() = default;
  // Layers the observer wants; others are not shown to it.
  virtual bool wants_layer(int64_t layer) const { (void)layer; return true; }
  // Called once per block after the hook points and before the pattern multiplies the values.
  // An observer that intervenes (calibration, head masking) edits block.pattern in place.
  virtual void on_block(AttentionBlock& block) = 0;
  // Observers that only read statistics the fused kernel can compute fill `out` for the layer's
  // queries [q_begin, q_begin + n_queries) (keys up to q_begin + n_queries, and the sliding
  // window) and return true: the forward pass then takes the fused path for the layer, which
  // writes them, and on_block is not called. The default, false, keeps the materialising path
  // (observers that read the pattern itself or edit it: calibration, head masking). Called only
  // when the fused path is otherwise possible.
  virtual bool fused_stats(int64_t layer, int64_t q_begin, int64_t n_queries, int64_t sliding_window,
                           FusedAttentionStats& out) {
    (void)layer, (void)q_begin, (void)n_queries, (void)sliding_window, (void)out;
    return false;
  }
};

}  // namespace ms
