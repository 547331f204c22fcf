// The visibility mask as a tensor (see visibility.h).
#include "core/attention/visibility.h"

#include <ATen/ATen.h>

namespace ms {

at::Tensor visibility_mask(int64_t q_begin, int64_t n_queries, int64_t k_begin, int64_t n_keys, int64_t window,
                           c10::Device device) {
  auto lopts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor q = at::arange(q_begin, q_begin + n_queries, lopts).unsqueeze(1);
  at::Tensor k = at::arange(k_begin, k_begin + n_keys, lopts).unsqueeze(0);
  at::Tensor d = q - k;  // (nq, nk)
  at::Tensor vis = d >= 0;
  return window > 0 ? vis.logical_and(d < window) : vis;
}

}  // namespace ms
