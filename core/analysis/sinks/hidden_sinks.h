// Hidden sinks (ACT, Yu et al. 2024): keys after the first whose key importance alpha_k exceeds a
// threshold. One rule for the sinks analysis and the workbench's calibrate action.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "core/base/head_ref.h"

namespace ms {

// alpha: (layer, head, key), AttentionStats::alpha of one sequence; threshold: (key) or a scalar
// tensor. Returns the (layer, head, key) bool mask of hidden sinks, key 0 always false.
at::Tensor hidden_sink_mask(const at::Tensor& alpha, const at::Tensor& threshold);
// The hidden-sink key positions of the given heads under an absolute threshold, merged, sorted
// and unique.
std::vector<int64_t> hidden_sink_positions(const at::Tensor& alpha, const std::vector<HeadRef>& heads,
                                           double threshold);

}  // namespace ms
