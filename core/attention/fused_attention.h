// Fused causal attention for the CPU: for each (batch, KV head, query tile) the queries of the G
// heads sharing that KV head walk the key tiles with an online softmax (FlashAttention; ggml's
// CPU flash_attn_ext), so no score exists beyond one tile and each K/V tile is read once for all
// G heads. Tiles no query can see (future, outside the sliding window) are skipped; float32.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "core/attention/attention_observer.h"

namespace ms {

struct FusedAttentionOptions {
  int64_t past = 0;            // absolute position of the first query (keys before it: the cache)
  int64_t sliding_window = 0;  // 0: causal only; else query i sees key j iff 0 <= i - j < window
  double scale = 1.0;          // applied to the queries once (1 / sqrt(d_head))
  double softcap = 0.0;        // > 0: scores become softcap * tanh(score / softcap) (Gemma 2)
  int64_t q_tile = 0;          // queries per tile (times G heads = rows); 0 chooses
  int64_t k_tile = 0;          // keys per tile, rounded up to 16; 0 chooses
  bool portable = false;       // the portable kernels even where AVX2/FMA exists (tests)
  bool tiled_decode = false;   // one query (T = 1) through the key tiles too, not the decode path (tests)
  // When set, the statistics it asks for (key mass, entropy, argmax, max weight; see
  // attention_observer.h), gathered in the same walk over the key tiles, each score read once:
  // per row the best score and its first key, and u = sum p~ (s - m) rescaled with the running
  // max m as the sum l is (entropy = log l - u / l); for key mass every key tile's unnormalised
  // weights p~ are kept with the row's max at that tile (rows x (past + T) floats per worker) and
  // turned into A = p~ exp(m_tile - m) / l once the row's m and l are final.
  const FusedAttentionStats* stats = nullptr;
};

// q: (batch, T, n_heads, d_head); k, v: (batch, n_kv_heads, past + T, d_head), any strides
// (a KV cache's narrowed buffers work as they are); n_kv_heads divides n_heads, query head h
// reads KV head h / (n_heads / n_kv_heads). Returns z = softmax(cap(q k^T * scale) + mask) v as
// (batch, T, n_heads, d_head), contiguous, in q's dtype (computed in float32). CPU tensors.
at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const FusedAttentionOptions& opts);

// How many times fused_attention ran in this process (tests and benchmarks check which path a
// forward pass took).
int64_t fused_attention_calls();

// Name of the tile kernels fused_attention uses on this CPU ("avx2" or "portable").
const char* fused_attention_kernels(bool portable = false);

}  // namespace ms
