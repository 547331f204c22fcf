// The model's normalisation (ModelConfig::norm: LayerNorm or RMSNorm, with norm_eps) in one place:
// the forward pass applies it (ln1, ln2, ln_final), the circuit graph re-applies it to patched
// residuals, and the logit lens applies the final norm to every layer's residual stream.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>

#include "core/model/model_config.h"

namespace ms {

// The hook points of one norm (ln*.hook_scale, ln*.hook_normalized); each returns the value the
// pass continues with.
struct NormTaps {
  std::function<at::Tensor(const at::Tensor&)> scale, normalized;
};

// norm(x) * w (+ b) as the forward pass computes it, in x's dtype. LayerNorm without taps is
// at::layer_norm in x's dtype; with taps it is computed in float32 so the scale
// sqrt(mean(x_c^2) + eps) and the normalised value (after weight and bias) pass through them.
// RMSNorm is computed in float32 (Hugging Face LlamaRMSNorm) and the weight applied in x's dtype;
// its normalised value (with taps) is taken before the weight. w and b on x's device and dtype.
at::Tensor apply_norm(const ModelConfig& c, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                      const NormTaps* taps = nullptr);

// The same in float32 on x's device whatever the model's dtype (weight and bias converted; an
// undefined weight is 1): for analyses that re-apply a norm (circuit graph, logit lens).
at::Tensor apply_norm_f32(const ModelConfig& c, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

// What ln*.hook_normalized holds for input x, in float32: LayerNorm after its weight and bias,
// RMSNorm before its weight (x * rsqrt(mean(x^2) + eps)).
at::Tensor norm_normalized_f32(const ModelConfig& c, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

// The pieces of the norm for its Jacobian, on float32 x: the centred input (LayerNorm: x -
// mean(x); RMSNorm: x) and 1 / scale = rsqrt(mean(x_c^2) + eps), [..., 1].
at::Tensor norm_centre(const ModelConfig& c, const at::Tensor& xf);
at::Tensor norm_inv_scale(const ModelConfig& c, const at::Tensor& xc);

}  // namespace ms
