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

class AttentionObserver {
 public:
  virtual ~AttentionObserver() = default;
  // Layers the observer wants; others are not shown to it.
  virtual bool wants_layer(int64_t layer) const { (void)layer; return true; }
  // Called once per block after the hook points and before the pattern multiplies the values.
  // An observer that intervenes (calibration, head masking) edits block.pattern in place.
  virtual void on_block(AttentionBlock& block) = 0;
};

}  // namespace ms
