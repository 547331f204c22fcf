// One SAE / transcoder pass in SAELens' order: hook_sae_input, runtime norm in, b_dec subtracted
// (apply_b_dec_to_input; never for transcoders), encoder, activation, decoder, hook_sae_recons,
// runtime norm out, skip connection.
#include "core/features/sae.h"

#include <ATen/ATen.h>

#include <cmath>

namespace ms {

const char* sae_arch_name(SaeArch a) {
  switch (a) {
    case SaeArch::kStandard: return "standard";
    case SaeArch::kGated: return "gated";
    case SaeArch::kJumpRelu: return "jumprelu";
    case SaeArch::kTopK: return "topk";
    case SaeArch::kTranscoder: return "transcoder";
    case SaeArch::kSkipTranscoder: return "skip_transcoder";
    case SaeArch::kJumpReluTranscoder: return "jumprelu_transcoder";
  }
  return "?";
}

bool sae_is_transcoder(SaeArch a) {
  return a == SaeArch::kTranscoder || a == SaeArch::kSkipTranscoder || a == SaeArch::kJumpReluTranscoder;
}

const char* sae_stage_hook(SaeStage s) {
  switch (s) {
    case SaeStage::kInput: return "hook_sae_input";
    case SaeStage::kActsPre: return "hook_sae_acts_pre";
    case SaeStage::kActsPost: return "hook_sae_acts_post";
    case SaeStage::kRecons: return "hook_sae_recons";
    case SaeStage::kError: return "hook_sae_error";
    case SaeStage::kOutput: return "hook_sae_output";
  }
  return "?";
}

namespace {

at::Tensor tapped(const SaeTap& tap, SaeStage stage, at::Tensor t) {
  if (!tap) return t;
  at::Tensor r = tap(stage, t);
  return r.defined() ? r : t;
}

}  // namespace

SaePass Sae::run(const at::Tensor& x_in, const SaeTap& tap, bool decode) const {
  const bool transcoder = sae_is_transcoder(cfg.arch);
  at::Tensor x = x_in.to(at::kFloat);
  if (x.size(-1) != cfg.d_in)
    fail_input(cfg.source + ": the SAE takes d_in " + std::to_string(cfg.d_in) + " but was given " +
               std::to_string(x.size(-1)) + " values per position");
  SaePass p;
  p.input = tapped(tap, SaeStage::kInput, x);
  at::Tensor h = p.input;
  at::Tensor norm_coeff, ln_mu, ln_std;  // for undoing the runtime norm
  if (cfg.runtime_norm == SaeRuntimeNorm::kConstantNormRescale) {
    norm_coeff = std::sqrt(static_cast<double>(cfg.d_in)) / h.norm(2, {-1}, true);
    h = h * norm_coeff;
  } else if (cfg.runtime_norm == SaeRuntimeNorm::kLayerNorm) {
    ln_mu = h.mean({-1}, true);
    h = h - ln_mu;
    ln_std = h.std({-1}, /*unbiased=*/true, /*keepdim=*/true);
    h = h / (ln_std + 1e-5);
  }
  if (!transcoder && cfg.apply_b_dec_to_input) h = h - w.b_dec;  // (.., d_in)

  at::Tensor pre, post;
  if (cfg.arch == SaeArch::kGated) {
    at::Tensor gate = at::matmul(h, w.W_enc) + w.b_gate;
    pre = at::matmul(h, w.W_enc * w.r_mag.exp()) + w.b_mag;
    pre = tapped(tap, SaeStage::kActsPre, pre);
    post = (gate > 0).to(pre.scalar_type()) * at::relu(pre);
  } else {
    pre = tapped(tap, SaeStage::kActsPre, at::matmul(h, w.W_enc) + w.b_enc);  // (.., d_sae)
    if (cfg.arch == SaeArch::kJumpRelu || cfg.arch == SaeArch::kJumpReluTranscoder) {
      post = at::relu(pre) * (pre > w.threshold).to(pre.scalar_type());
    } else if (cfg.arch == SaeArch::kTopK) {
      auto top = pre.topk(std::min<int64_t>(cfg.k, cfg.d_sae), -1);
      post = at::zeros_like(pre).scatter_(-1, std::get<1>(top), at::relu(std::get<0>(top)));
    } else {
      post = at::relu(pre);
    }
  }
  p.acts_pre = pre;
  p.acts_post = tapped(tap, SaeStage::kActsPost, post);
  if (!decode) return p;
  p.recons = tapped(tap, SaeStage::kRecons, at::matmul(p.acts_post, w.W_dec) + w.b_dec);  // (.., d_out)
  at::Tensor out = p.recons;
  if (!transcoder) {
    if (norm_coeff.defined()) out = out / norm_coeff;
    if (ln_std.defined()) out = out * ln_std + ln_mu;
  }
  if (w.W_skip.defined()) out = out + at::matmul(x, w.W_skip.t());  // skip transcoders (any encoder)
  p.out = out;
  return p;
}

void Sae::to_device(c10::Device device) {
  for (at::Tensor* t : {&w.W_enc, &w.b_enc, &w.W_dec, &w.b_dec, &w.threshold, &w.b_gate, &w.r_mag, &w.b_mag, &w.W_skip}) {
    if (t->defined()) *t = t->to(device);
  }
}

at::Tensor Sae::to_input(const at::Tensor& act) const {
  if (cfg.hook_head_index >= 0) {
    if (act.dim() < 2 || act.size(-2) <= cfg.hook_head_index)
      fail_input(cfg.source + ": hook_head_index " + std::to_string(cfg.hook_head_index) + " needs a [.., heads, d_head] "
                 "activation at " + cfg.hook_name + " with that many heads");
    return act.select(-2, cfg.hook_head_index);
  }
  if (cfg.reshape_hook_z) {
    if (act.dim() < 2) fail_input(cfg.source + ": reshape_activations hook_z needs a [.., heads, d_head] activation");
    return act.flatten(-2, -1);
  }
  return act;
}

at::Tensor Sae::from_output(const at::Tensor& out, const at::Tensor& act) const {
  if (cfg.hook_head_index >= 0) {
    at::Tensor r = act.clone();
    r.select(-2, cfg.hook_head_index).copy_(out);
    return r;
  }
  if (cfg.reshape_hook_z) return out.reshape(act.sizes()).to(act.scalar_type());
  return out.to(act.scalar_type());
}

}  // namespace ms
