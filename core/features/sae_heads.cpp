// Direct feature attribution by head for hook_z SAEs: the per-position split (split_by_head) and the
// corpus pass (sae_heads), which needs no [rows, d_sae, n_heads] tensor: the attribution summed over
// the positions where a feature fires is sum_d W[d, f] * (mask^T xn)[f, d] within each head's slice,
// one GEMM per prompt. Everything is accumulated in float64.
#include "core/features/sae_heads.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>

#include "core/model/model.h"
#include "hooks/activation_cache.h"
#include "hooks/hook_names.h"

namespace ms {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The input after the SAE's runtime normalisation, float64 (as Sae::run, in float64).
at::Tensor normalised(const Sae& sae, const at::Tensor& x) {
  at::Tensor h = x.to(at::kDouble);
  if (sae.cfg.runtime_norm == SaeRuntimeNorm::kConstantNormRescale) {
    h = h * (std::sqrt(static_cast<double>(sae.cfg.d_in)) / h.norm(2, {-1}, true));
  } else if (sae.cfg.runtime_norm == SaeRuntimeNorm::kLayerNorm) {
    h = h - h.mean({-1}, true);
    h = h / (h.std({-1}, /*unbiased=*/true, /*keepdim=*/true) + 1e-5);
  }
  return h;
}

// The encoder of the activation's path [d_in, d_sae] and its constant [d_sae], float64.
void encoder(const Sae& sae, at::Tensor* W, at::Tensor* bias) {
  *W = sae.w.W_enc.to(at::kDouble);
  at::Tensor b = sae.cfg.arch == SaeArch::kGated ? sae.w.b_mag : sae.w.b_enc;
  if (sae.cfg.arch == SaeArch::kGated) *W = *W * sae.w.r_mag.to(at::kDouble).exp();
  *bias = b.to(at::kDouble);
  if (sae.cfg.apply_b_dec_to_input) *bias = *bias - at::matmul(sae.w.b_dec.to(at::kDouble), *W);
}

// x [rows, d_in] of one prompt at the SAE's hook.
at::Tensor hook_z_rows(const Model& m, const Sae& sae, const std::vector<int32_t>& ids) {
  std::vector<int64_t> flat(ids.begin(), ids.end());
  at::Tensor tokens = at::tensor(flat, at::kLong).view({1, static_cast<int64_t>(flat.size())}).to(m.device());
  HookRegistry reg;
  ActivationCache cache;
  reg.add_forward(sae.cfg.hook_name, cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &reg;
  const int L = hook_layer(sae.cfg.hook_name);
  fo.stop_at_layer = L + 1 < m.config().n_layers ? L + 1 : -1;
  m.forward(tokens, fo);
  return sae.to_input(cache.at(sae.cfg.hook_name)).to(at::kFloat).reshape({-1, sae.cfg.d_in});
}

}  // namespace

Status check_head_sae(const Sae& sae, int64_t n_heads, int64_t d_head) {
  const SaeConfig& c = sae.cfg;
  const std::string where = c.source + ": ";
  if (sae_is_transcoder(c.arch))
    return Error{ErrorCode::kBadInput, where + "a " + std::string(sae_arch_name(c.arch)) +
                                           " cannot be split by head; give an SAE on blocks.L.attn.hook_z"};
  if (!ends_with(c.hook_name, "attn.hook_z") || hook_layer(c.hook_name) < 0)
    return Error{ErrorCode::kBadInput, where + "the SAE reads '" + c.hook_name +
                                           "', not blocks.L.attn.hook_z; head attribution needs an SAE on hook_z"};
  if (c.hook_head_index >= 0)
    return Error{ErrorCode::kBadInput, where + "the SAE reads only head " + std::to_string(c.hook_head_index) +
                                           " (hook_head_index); head attribution needs all heads concatenated"};
  if (!c.reshape_hook_z)
    return Error{ErrorCode::kBadInput, where + "reshape_activations is not hook_z; head attribution needs the heads "
                                               "concatenated"};
  if (c.d_in != n_heads * d_head)
    return Error{ErrorCode::kBadInput, where + "d_in " + std::to_string(c.d_in) + " is not n_heads x d_head = " +
                                           std::to_string(n_heads) + " x " + std::to_string(d_head)};
  return {};
}

HeadSplit split_by_head(const Sae& sae, const at::Tensor& x, int64_t n_heads) {
  c10::InferenceMode guard;
  const int64_t R = x.size(0), F = sae.cfg.d_sae, dh = sae.cfg.d_in / n_heads;
  HeadSplit s;
  at::Tensor W;
  encoder(sae, &W, &s.bias);
  at::Tensor xn = normalised(sae, x);
  // (R, H, dh) x (H, dh, F) -> (R, F, H)
  s.per_head = at::einsum("rhd,hdf->rfh", {xn.view({R, n_heads, dh}), W.view({n_heads, dh, F})});
  s.acts_pre = s.per_head.sum(-1) + s.bias;
  s.acts = sae.run(x).acts_post;
  return s;
}

SaeHeadsResult sae_heads(const Model& m, const Sae& sae, const std::vector<std::vector<int32_t>>& prompts,
                         const SaeHeadsOptions& o, const std::function<void(int64_t, int64_t)>& progress,
                         const std::atomic<bool>* cancel) {
  c10::InferenceMode guard;
  const ModelConfig& c = m.config();
  Status ok = check_head_sae(sae, c.n_heads, c.d_head);
  if (!ok) throw InputError(ok.error().message, ok.error().code);
  const int64_t H = c.n_heads, dh = c.d_head, F = sae.cfg.d_sae;
  SaeHeadsResult r;
  r.layer = hook_layer(sae.cfg.hook_name);
  r.n_heads = H;
  r.d_sae = F;
  at::Tensor W, bias;
  encoder(sae, &W, &bias);
  W = W.cpu();
  bias = bias.cpu();
  const at::Tensor Wt = W.t().contiguous();  // [F, d_in]
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  at::Tensor n_firing = at::zeros({F}, f64), act_sum = at::zeros({F}, f64), attr = at::zeros({F, H}, f64);
  const int32_t bos = c.bos_token_id;
  const int64_t total = static_cast<int64_t>(prompts.size());
  for (int64_t p = 0; p < total; ++p) {
    if (cancel && cancel->load()) break;
    const std::vector<int32_t>& ids = prompts[static_cast<size_t>(p)];
    at::Tensor x = hook_z_rows(m, sae, ids);
    if (o.skip_bos && bos >= 0 && !ids.empty() && ids[0] == bos) x = x.narrow(0, 1, x.size(0) - 1);
    r.n_tokens += x.size(0);
    if (x.size(0) == 0) continue;
    at::Tensor acts = sae.run(x).acts_post.to(at::kDouble).cpu();  // [R, F]
    at::Tensor fire = (acts > 0).to(at::kDouble);
    at::Tensor M = at::matmul(fire.t(), normalised(sae, x).cpu());  // [F, d_in]: sum of xn where firing
    attr += (M * Wt).view({F, H, dh}).sum(-1);
    n_firing += fire.sum(0);
    act_sum += acts.sum(0);
    if (progress) progress(p + 1, total);
  }

  r.n_firing = n_firing.round().to(at::kLong);
  r.act_sum = act_sum;
  r.head_attribution = attr;
  const at::Tensor live = n_firing >= static_cast<double>(std::max<int64_t>(1, o.min_firing));
  const at::Tensor denom = at::where(act_sum > 0, act_sum, at::ones_like(act_sum));
  r.head_fraction = at::where(live.unsqueeze(1), attr / denom.unsqueeze(1), at::zeros_like(attr));
  at::Tensor bias_total = bias * n_firing;
  r.bias_fraction = at::where(live, bias_total / denom, at::zeros_like(bias_total));
  at::Tensor pos = attr.clamp_min(0);
  at::Tensor pos_sum = pos.sum(1);
  r.dominant_head = at::where(live, attr.argmax(1), at::full({F}, -1, at::kLong));
  r.dominant_share = at::where(live & (pos_sum > 0), pos.amax(1) / at::where(pos_sum > 0, pos_sum, at::ones_like(pos_sum)),
                               at::zeros_like(pos_sum));
  at::Tensor dec = sae.w.W_dec.to(at::kDouble).cpu().view({F, H, dh}).pow(2).sum(-1);  // [F, H]
  at::Tensor dec_sum = dec.sum(1, true);
  r.decoder_fraction = dec / at::where(dec_sum > 0, dec_sum, at::ones_like(dec_sum));

  const at::Tensor dominated_mask = live & (r.dominant_share >= o.dominance);
  r.dominated = at::zeros({H}, at::kLong);
  if (dominated_mask.any().item<bool>())
    r.dominated.index_add_(0, r.dominant_head.masked_select(dominated_mask), at::ones({dominated_mask.sum().item<int64_t>()}, at::kLong));
  const double all_act = act_sum.sum().item<double>();
  r.activation_share = all_act > 0 ? attr.sum(0) / all_act : at::zeros({H}, f64);
  r.n_live = live.sum().item<int64_t>();
  r.n_dominated = dominated_mask.sum().item<int64_t>();
  r.n_polysemantic = (r.dominated >= o.polysemantic_min).sum().item<int64_t>();
  if (r.n_live > 0) {
    at::Tensor err = (attr.sum(1) + bias_total - act_sum).abs() / denom;
    r.max_sum_error = err.masked_select(live).max().item<double>();
  }
  return r;
}

}  // namespace ms
