// The one causal / sliding-window visibility rule: query position q sees key position k iff
// 0 <= q - k and, with a sliding window w > 0, q - k < w (Mistral's convention: a query sees
// itself and the w - 1 keys before it). The forward pass masks with it, the attention observer
// hands it to analyses (visible_keys), and the sink baselines count with it.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <algorithm>
#include <cstdint>

namespace ms {

// One pair of positions; window 0 means causal only.
inline bool key_visible(int64_t q, int64_t k, int64_t window) {
  const int64_t d = q - k;
  return d >= 0 && (window <= 0 || d < window);
}

// The first key query q can see.
inline int64_t first_visible_key(int64_t q, int64_t window) {
  return window > 0 ? std::max<int64_t>(0, q - window + 1) : 0;
}

// (n_queries, n_keys) bool on device: key_visible(q_begin + i, k_begin + j, window).
at::Tensor visibility_mask(int64_t q_begin, int64_t n_queries, int64_t k_begin, int64_t n_keys, int64_t window,
                           c10::Device device = c10::kCPU);

}  // namespace ms
