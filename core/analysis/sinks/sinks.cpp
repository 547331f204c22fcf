// Attention-sink analysis: key importance per head from the streaming attention statistics,
// hidden sinks, massive activations from the residual stream, and ACT's calibration.
#include "core/analysis/sinks/sinks.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <map>

#include "core/analysis/sinks/hidden_sinks.h"
#include "core/attention/attention_stats.h"
#include "core/attention/visibility.h"
#include "core/tokenizer/token_label.h"
#include "hooks/hook_registry.h"

namespace ms {
namespace {

// Mean over the queries that see key k of the weight a uniform head gives it: 1 / (keys visible
// to query i), the baseline of the relative hidden-sink threshold.
at::Tensor uniform_alpha(int64_t T, int64_t window) {
  at::Tensor visf = visibility_mask(0, T, 0, T, window).to(at::kDouble);  // (query, key)
  at::Tensor per_query = 1.0 / visf.sum(1);  // keys each query sees (exact small integers)
  return ((visf * per_query.unsqueeze(1)).sum(0) / visf.sum(0).clamp_min(1)).to(at::kFloat);
}

}  // namespace

at::Tensor hidden_sink_mask(const at::Tensor& alpha, const at::Tensor& threshold) {
  at::Tensor hidden = alpha > threshold;
  hidden.select(-1, 0).fill_(false);
  return hidden;
}

std::vector<int64_t> hidden_sink_positions(const at::Tensor& alpha, const std::vector<HeadRef>& heads,
                                           double threshold) {
  at::Tensor mask = hidden_sink_mask(alpha, at::full({alpha.size(-1)}, threshold, alpha.options()));
  std::vector<int64_t> out;
  for (const HeadRef& h : heads) {
    at::Tensor keys = mask[h.layer][h.head].nonzero().view(-1).to(at::kCPU);
    for (int64_t i = 0; i < keys.numel(); ++i) out.push_back(keys[i].item<int64_t>());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

SinkReport analyze_sinks(const Model& model, const std::vector<std::vector<int32_t>>& prompts,
                         const SinkOptions& o, const Progress& progress, const std::atomic<bool>* cancel) {
  const ModelConfig& c = model.config();
  const int64_t L = c.n_layers, H = c.n_heads, P = static_cast<int64_t>(prompts.size());
  if (P == 0) fail_usage("sink analysis needs at least one prompt");
  SinkReport r;
  r.n_layers = L;
  r.n_heads = H;
  const int64_t curve = std::max<int64_t>(1, o.curve_positions);
  auto f = at::TensorOptions().dtype(at::kFloat);
  r.head_alpha0 = at::zeros({L, H}, f);
  r.head_sink_rate = at::zeros({L, H}, f);
  r.head_sink_mass = at::zeros({L, H}, f);
  r.head_hidden_count = at::zeros({L, H}, at::TensorOptions().dtype(at::kLong));
  r.first_alpha = at::full({P, L, H, curve}, std::numeric_limits<float>::quiet_NaN(), f);
  at::Tensor events = at::zeros({curve}, at::kDouble), denom = at::zeros({curve}, at::kDouble);
  c10::InferenceMode guard;

  for (int64_t p = 0; p < P; ++p) {
    if (cancel && cancel->load()) break;
    std::vector<int32_t> ids = prompts[static_cast<size_t>(p)];
    if (o.max_tokens > 0 && static_cast<int64_t>(ids.size()) > o.max_tokens) ids.resize(static_cast<size_t>(o.max_tokens));
    if (ids.empty()) fail_input("prompt " + std::to_string(p) + " has no tokens");
    const int64_t T = static_cast<int64_t>(ids.size());

    AttentionStats stats(L, H, 1, T, AttentionStatsOptions{false});
    HookRegistry hooks;
    hooks.add_forward("blocks.*.hook_resid_post", [&](const at::Tensor& act, const HookContext& ctx) {
      at::Tensor h = act[0].abs().to(at::kFloat);  // (T, d)
      double median = h.median().item<double>();
      at::Tensor hit = (h > o.massive_abs).logical_and(h >= o.massive_ratio * median);
      if (hit.any().item<bool>()) {
        at::Tensor where = hit.nonzero();  // (n, 2): position, dim
        for (int64_t n = 0; n < where.size(0); ++n) {
          int64_t pos = where[n][0].item<int64_t>(), dim = where[n][1].item<int64_t>();
          double v = act[0][pos][dim].item<double>();
          r.massive.push_back({p, ctx.layer, pos, dim, ids[static_cast<size_t>(pos)],
                               token_label(model, ids[static_cast<size_t>(pos)]), v,
                               median > 0 ? std::abs(v) / median : std::numeric_limits<double>::infinity()});
        }
      }
      return at::Tensor();
    });
    ForwardOptions fo;
    fo.attention = &stats;
    fo.hooks = &hooks;
    fo.stop_at_layer = L;  // the unembedding is not needed
    fo.attn_block = o.attn_block;
    model.forward(model.tokens_tensor(ids), fo);

    at::Tensor alpha = stats.alpha().select(1, 0);  // (L, H, T)
    at::Tensor a0 = alpha.select(-1, 0);
    r.head_alpha0 += a0;
    r.head_sink_rate += (a0 > o.epsilon).to(at::kFloat);
    const int64_t nc = std::min(curve, T);
    r.first_alpha[p].narrow(-1, 0, nc).copy_(alpha.narrow(-1, 0, nc));
    events.narrow(0, 0, nc) += (alpha.narrow(-1, 0, nc) > o.epsilon).sum(at::IntArrayRef{0, 1}).to(at::kDouble);
    denom.narrow(0, 0, nc) += static_cast<double>(L * H);

    // Hidden sinks: later keys above the absolute or the uniform-relative threshold.
    // Relative: to the uniform weight under each layer's own window (Gemma's local and global layers).
    at::Tensor threshold = at::full({T}, o.hidden_threshold, f);
    if (o.hidden_relative) {
      // One uniform curve per distinct window (it costs a T x T mask): usually one for all layers.
      std::map<int64_t, at::Tensor> by_window;
      std::vector<at::Tensor> per_layer;
      for (int64_t l = 0; l < alpha.size(0); ++l) {
        at::Tensor& u = by_window[c.window(l)];
        if (!u.defined()) u = uniform_alpha(T, c.window(l)) * o.hidden_threshold;
        per_layer.push_back(u);
      }
      threshold = at::stack(per_layer).unsqueeze(1);  // (L, 1, T)
    }
    at::Tensor hidden = hidden_sink_mask(alpha, threshold);  // (L, H, T)
    r.head_hidden_count += hidden.sum(-1);
    at::Tensor found = hidden.nonzero();
    for (int64_t n = 0; n < found.size(0); ++n) {
      int64_t l = found[n][0].item<int64_t>(), h = found[n][1].item<int64_t>(), k = found[n][2].item<int64_t>();
      int32_t id = ids[static_cast<size_t>(k)];
      r.hidden.push_back({p, l, h, k, id, token_label(model, id), alpha[l][h][k].item<double>()});
    }
    // Sink mass: attention on the first token and the head's hidden sinks, averaged over queries.
    at::Tensor sinks = hidden.clone();
    sinks.select(-1, 0).fill_(true);
    r.head_sink_mass += (stats.key_mass().select(1, 0) * sinks.to(at::kFloat)).sum(-1) / static_cast<double>(T);
    r.n_prompts = p + 1;
    if (progress) progress(p + 1, P);
  }
  const double n = static_cast<double>(std::max<int64_t>(1, r.n_prompts));
  r.head_alpha0 /= n;
  r.head_sink_rate /= n;
  r.head_sink_mass /= n;
  r.sink_rate_first = 100.0 * r.head_sink_rate.mean().item<double>();
  r.sink_rate_curve = (100.0 * events / denom.clamp_min(1)).to(at::kFloat);
  if (r.n_prompts < P) r.first_alpha = r.first_alpha.narrow(0, 0, r.n_prompts);
  return r;
}

SinkCalibration::SinkCalibration(std::vector<HeadRef> heads, std::vector<int64_t> sink_positions, double beta)
    : m_heads(std::move(heads)), m_sinks(std::move(sink_positions)), m_beta(beta) {
  m_sinks.erase(std::remove(m_sinks.begin(), m_sinks.end(), int64_t(0)), m_sinks.end());  // first token untouched
}

bool SinkCalibration::wants_layer(int64_t layer) const {
  return std::any_of(m_heads.begin(), m_heads.end(), [&](const HeadRef& h) { return h.layer == layer; });
}

void SinkCalibration::on_block(AttentionBlock& b) {
  if (m_beta == 1.0 || m_sinks.empty()) return;
  at::Tensor vis = visible_keys(b);
  at::Tensor k = at::arange(b.k_begin, b.k_begin + b.n_keys,
                            at::TensorOptions().dtype(at::kLong).device(b.pattern.device())).unsqueeze(0);
  at::Tensor is_sink = at::zeros({b.n_keys}, at::TensorOptions().dtype(at::kBool).device(b.pattern.device()));
  for (int64_t s : m_sinks)
    if (s >= b.k_begin && s < b.k_begin + b.n_keys) is_sink[s - b.k_begin] = true;
  at::Tensor sink_f = is_sink.to(b.pattern.scalar_type()).unsqueeze(0);                     // (1, nk)
  at::Tensor other_f = vis.logical_and(is_sink.logical_not().unsqueeze(0)).logical_and(k != 0)
                           .to(b.pattern.scalar_type());                                     // (tb, nk)
  for (const HeadRef& hr : m_heads) {
    if (hr.layer != b.layer) continue;
    at::Tensor a = b.pattern.select(1, hr.head);  // (B, tb, nk), a view: edited in place
    at::Tensor sink_mass = (a * sink_f).sum(-1, true);
    at::Tensor other_mass = (a * other_f).sum(-1, true);
    at::Tensor can = (other_mass > 0).to(a.scalar_type());  // rows with somewhere to put the mass
    at::Tensor freed = (1.0 - m_beta) * sink_mass * can;
    at::Tensor sink_scale = 1.0 - (1.0 - m_beta) * can;      // beta where redistributed, else 1
    at::Tensor gain = 1.0 + freed / other_mass.clamp_min(1e-30);
    at::Tensor edited = a * (1.0 - sink_f - other_f) + a * sink_f * sink_scale + a * other_f * gain;
    a.copy_(edited);
  }
}

}  // namespace ms
