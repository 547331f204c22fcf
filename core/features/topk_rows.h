// The top-k activation of topk SAEs over a batch, row-parallel: for each row of pre-activations
// the k largest values kept (relu'd), the rest zero. The same result as
// zeros.scatter_(-1, pre.topk(k).indices, relu(pre.topk(k).values)), without ATen's single-threaded
// sort of (value, index) pairs: a cut taken from a sample of each row, one pass collecting the
// values above it, a selection among those few.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ms {

// pre: (B, n) float32, CPU. Returns acts (B, n) float32; *fired (optional) gets (B, n) bool,
// acts > 0. *fired and *out (optional), when already of that shape and dtype, are written in place
// and reused (a fresh 50 MB tensor a training step costs about as much in page faults as the
// selection); out receives the activations. Ties at the k-th value are broken towards the lower index; NaN counts as the largest
// value (as at::topk does) and stays NaN in acts.
at::Tensor topk_relu_rows(const at::Tensor& pre, int64_t k, at::Tensor* fired = nullptr, at::Tensor* out = nullptr);

}  // namespace ms
