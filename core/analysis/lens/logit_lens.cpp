// The logit lens over the kept residual streams (see logit_lens.h).
#include "core/analysis/lens/logit_lens.h"

#include <ATen/ATen.h>

#include "core/model/norm.h"

namespace ms {
namespace {
at::Tensor cpu_f32(const at::Tensor& t) { return t.defined() ? t.to(at::kCPU).to(at::kFloat) : at::Tensor(); }
}  // namespace

LogitLens::LogitLens(const Model& model)
    : m_model(model), m_resid(static_cast<size_t>(model.config().n_layers)) {
  const ModelWeights& w = model.weights();
  m_wu = cpu_f32(w.w_u);
  m_bu = cpu_f32(w.b_u);
  m_ln_w = cpu_f32(w.ln_f_w);
  m_ln_b = cpu_f32(w.ln_f_b);
}

void LogitLens::attach(HookRegistry& hooks) {
  hooks.add_forward("blocks.*.hook_resid_post", [this](const at::Tensor& act, const HookContext& ctx) {
    m_resid[static_cast<size_t>(ctx.layer)] = act.detach().select(0, 0).to(at::kCPU);  // (pos, d_model)
    return at::Tensor();
  });
}

at::Tensor LogitLens::logits(const at::Tensor& resid) const {
  at::Tensor x = apply_norm_f32(m_model.config(), resid.to(at::kCPU), m_ln_w, m_ln_b);
  at::Tensor lg = at::matmul(x, m_wu.t());  // (..., d_vocab)
  if (m_bu.defined()) lg = lg + m_bu;
  // Gemma 2's final soft-capping, as the model applies it: the last layer's lens is its prediction.
  const double cap = m_model.config().final_softcap;
  return cap > 0 ? at::tanh(lg / cap) * cap : lg;
}

LogitLens::Top1 LogitLens::top1(const at::Tensor& resid) const {
  auto [probs, ids] = at::softmax(logits(resid), -1).max(-1);
  return {ids.contiguous(), probs.contiguous()};
}

LogitLens::TopK LogitLens::topk(const at::Tensor& resid, int64_t k, const at::Tensor& targets) const {
  at::Tensor lg = logits(resid);  // (pos, vocab)
  at::Tensor p = at::softmax(lg, -1);
  auto [probs, ids] = p.topk(std::min<int64_t>(k, p.size(-1)), -1);
  at::Tensor t = targets.to(at::kLong);
  at::Tensor valid = t.ge(0);
  at::Tensor idx = t.clamp_min(0).unsqueeze(-1);
  at::Tensor tp = p.gather(-1, idx);                     // (pos, 1)
  at::Tensor rank = lg.gt(lg.gather(-1, idx)).sum(-1) + 1;  // on the logits: exp can round neighbours equal
  return {ids.contiguous(), probs.contiguous(), at::where(valid, rank, at::full_like(rank, -1)).contiguous(),
          at::where(valid, tp.squeeze(-1), at::full_like(tp.squeeze(-1), -1.0f)).contiguous()};
}

}  // namespace ms
