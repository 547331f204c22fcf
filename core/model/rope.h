// Rotary position embedding frequencies (Hugging Face conventions), with linear and llama3
// rope_scaling.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/model/model_config.h"

namespace ms {

// inv_freq[i] = 1 / theta^(2i / rotary_dim), i < rotary_dim / 2, float64 on CPU, after scaling.
at::Tensor rope_inv_freq(const ModelConfig& cfg);

}  // namespace ms
