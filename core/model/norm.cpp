// LayerNorm and RMSNorm as the forward pass and the analyses apply them (see norm.h).
#include "core/model/norm.h"

#include <ATen/ATen.h>

namespace ms {

at::Tensor norm_centre(const ModelConfig& c, const at::Tensor& xf) {
  return c.norm == NormKind::kLayerNorm ? xf - xf.mean(-1, true) : xf;
}

at::Tensor norm_inv_scale(const ModelConfig& c, const at::Tensor& xc) {
  return at::rsqrt(xc.pow(2).mean(-1, true) + c.norm_eps);
}

at::Tensor apply_norm(const ModelConfig& c, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                      const NormTaps* taps) {
  if (c.norm == NormKind::kLayerNorm) {
    if (!taps) return at::layer_norm(x, {c.d_model}, w, b, c.norm_eps);
    at::Tensor xc = norm_centre(c, x.to(at::kFloat));
    at::Tensor scale = taps->scale((xc.pow(2).mean(-1, true) + c.norm_eps).sqrt());
    at::Tensor out = xc / scale;
    if (w.defined()) out = out * w.to(at::kFloat);
    if (b.defined()) out = out + b.to(at::kFloat);
    return taps->normalized(out).to(x.scalar_type());
  }
  // RMSNorm in float32 (Hugging Face LlamaRMSNorm), the weight applied in the compute dtype.
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor normalized;
  if (!taps) {
    normalized = xf * norm_inv_scale(c, xf);
  } else {
    at::Tensor scale = taps->scale((xf.pow(2).mean(-1, true) + c.norm_eps).sqrt());
    normalized = taps->normalized(xf / scale);
  }
  return w.defined() ? w * normalized.to(x.scalar_type()) : normalized.to(x.scalar_type());
}

at::Tensor apply_norm_f32(const ModelConfig& c, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  auto f32 = [&](const at::Tensor& t) { return t.defined() ? t.to(x.device(), at::kFloat) : at::Tensor(); };
  return apply_norm(c, x.to(at::kFloat), f32(w), f32(b));
}

at::Tensor norm_normalized_f32(const ModelConfig& c, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (c.norm == NormKind::kLayerNorm) return apply_norm_f32(c, x, w, b);
  at::Tensor xf = x.to(at::kFloat);
  return xf * norm_inv_scale(c, xf);
}

}  // namespace ms
