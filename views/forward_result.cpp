// compute_forward: one hooked forward pass that records patterns (attention observer), the
// residual stream after every layer (logit lens) and the next-token distribution.
#include "views/forward_result.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>

#include "core/attention/attention_observer.h"
#include "core/analysis/sinks/sinks.h"

namespace ms::views {

std::shared_ptr<const std::vector<float>> ForwardResult::pattern(int64_t layer, int64_t head) const {
  size_t i = static_cast<size_t>(layer * n_heads + head);
  if (layer < 0 || head < 0 || layer >= n_layers || head >= n_heads || i >= patterns.size()) return nullptr;
  return patterns[i];
}

std::shared_ptr<const PreparedHeatmap> ForwardResult::prepared_heatmap(int64_t layer, int64_t head) const {
  size_t i = static_cast<size_t>(layer * n_heads + head);
  if (!pattern(layer, head) || i >= prepared.size()) return nullptr;
  return prepared[i];
}

namespace {
// Copies the blocks of the wanted heads into full [query, key] matrices and sums attention on
// key 0 for every head.
class PatternRecorder : public AttentionObserver {
 public:
  PatternRecorder(int64_t n_layers, int64_t n_heads, int64_t n_pos, bool keep_all, int64_t keep_layer,
                  int64_t keep_head)
      : m_L(n_layers), m_H(n_heads), m_T(n_pos), m_sum0(n_layers * n_heads, 0.0) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    m_patterns.resize(static_cast<size_t>(n_layers * n_heads));
    for (int64_t l = 0; l < n_layers; ++l)
      for (int64_t h = 0; h < n_heads; ++h)
        if (keep_all || (l == keep_layer && h == keep_head))
          m_patterns[l * n_heads + h] = std::make_shared<std::vector<float>>(n_pos * n_pos, nan);
  }
  void on_block(AttentionBlock& b) override {
    at::Tensor p = b.pattern.select(0, 0).to(at::kFloat).contiguous();  // (H, nq, nk)
    at::Tensor vis = visible_keys(b);                                     // (nq, nk)
    at::Tensor col0;
    if (b.k_begin == 0) col0 = p.select(2, 0).to(at::kDouble).sum(1);    // (H)
    const float* pp = p.data_ptr<float>();
    const bool* vv = vis.to(at::kBool).contiguous().data_ptr<bool>();
    for (int64_t h = 0; h < m_H; ++h) {
      if (col0.defined()) {
        double s = col0[h].item<double>();
        if (b.q_begin == 0) s -= pp[(h * b.n_queries) * b.n_keys];  // query 0 sees only itself
        m_sum0[b.layer * m_H + h] += s;
      }
      auto& dst = m_patterns[b.layer * m_H + h];
      if (!dst) continue;
      for (int64_t i = 0; i < b.n_queries; ++i) {
        const float* src = pp + (h * b.n_queries + i) * b.n_keys;
        float* row = dst->data() + (b.q_begin + i) * m_T + b.k_begin;
        for (int64_t j = 0; j < b.n_keys; ++j)
          if (vv[i * b.n_keys + j]) row[j] = src[j];
      }
    }
  }
  int64_t m_L, m_H, m_T;
  std::vector<double> m_sum0;
  std::vector<std::shared_ptr<std::vector<float>>> m_patterns;
};

at::Tensor final_norm(const Model& model, const at::Tensor& x) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  at::Tensor xf = x.to(at::kFloat);
  if (c.norm == NormKind::kLayerNorm)
    return at::layer_norm(xf, {c.d_model}, w.ln_f_w.defined() ? w.ln_f_w.to(at::kCPU).to(at::kFloat) : at::Tensor(),
                          w.ln_f_b.defined() ? w.ln_f_b.to(at::kCPU).to(at::kFloat) : at::Tensor(), c.norm_eps);
  at::Tensor y = xf * at::rsqrt(xf.pow(2).mean(-1, true) + c.norm_eps);
  return w.ln_f_w.defined() ? y * w.ln_f_w.to(at::kCPU).to(at::kFloat) : y;
}
}  // namespace

std::string token_display(const Model& model, int32_t id) {
  if (model.tokenizer()) return model.tokenizer()->token_text(id);
  return "#" + std::to_string(id);
}

std::vector<int32_t> prompt_ids(const Model& model, const std::string& text) {
  if (model.tokenizer()) return model.tokenizer()->encode(text, true);
  std::vector<int32_t> ids;
  std::string s = text;
  for (char& ch : s)
    if (ch == ',') ch = ' ';
  std::istringstream in(s);
  std::string item;
  while (in >> item) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (*end != 0 || v < 0 || v >= model.config().d_vocab)
      fail_input("prompt: '" + item + "' is not a token id in [0, " + std::to_string(model.config().d_vocab) +
                 ") (this model has no tokenizer: give ids separated by spaces)");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

ForwardResult compute_forward(const Model& model, const ForwardRequest& req) {
  if (req.ids.empty()) fail_input("prompt: no tokens");
  auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& c = model.config();
  ForwardResult r;
  r.ids = req.ids;
  r.n_layers = c.n_layers;
  r.n_heads = c.n_heads;
  r.n_pos = static_cast<int64_t>(req.ids.size());
  for (int32_t id : req.ids) r.tokens.push_back(token_display(model, id));
  bool keep_all = c.n_layers * c.n_heads * r.n_pos * r.n_pos <= req.max_full_floats;
  PatternRecorder rec(c.n_layers, c.n_heads, r.n_pos, keep_all, req.keep_layer, req.keep_head);

  bool lens = req.lens && r.n_pos <= req.max_lens_positions;
  std::vector<at::Tensor> resid(static_cast<size_t>(c.n_layers));
  HookRegistry hooks;
  if (lens)
    hooks.add_forward("blocks.*.hook_resid_post", [&](const at::Tensor& act, const HookContext& ctx) {
      resid[static_cast<size_t>(ctx.layer)] = act.detach().select(0, 0).to(at::kCPU);  // (pos, d_model)
      return at::Tensor();
    });
  ForwardOptions opts;
  opts.attention = &rec;
  opts.hooks = lens ? &hooks : nullptr;
  opts.last_logits_only = true;
  at::NoGradGuard no_grad;
  at::Tensor logits = model.forward(model.tokens_tensor(req.ids), opts);  // (1, 1, d_vocab)
  at::Tensor probs = at::softmax(logits.reshape({-1}).to(at::kFloat), 0);
  int k = std::min<int>(req.top_k, static_cast<int>(probs.size(0)));
  auto [pv, pi] = probs.topk(k);
  for (int i = 0; i < k; ++i) {
    Prediction p;
    p.id = static_cast<int32_t>(pi[i].item<int64_t>());
    p.prob = pv[i].item<double>();
    p.token = token_display(model, p.id);
    r.top.push_back(p);
  }
  for (auto& p : rec.m_patterns) {
    r.patterns.push_back(p);
    bool big = p && r.n_pos > 256;
    r.prepared.push_back(big ? prepare_heatmap(p->data(), int(r.n_pos), int(r.n_pos)) : nullptr);
  }
  r.first_mass.resize(rec.m_sum0.size());
  for (size_t i = 0; i < rec.m_sum0.size(); ++i)
    r.first_mass[i] = r.n_pos > 1 ? rec.m_sum0[i] / double(r.n_pos - 1) : 1.0;

  if (lens) {
    const ModelWeights& w = model.weights();
    at::Tensor wu = w.w_u.to(at::kCPU).to(at::kFloat);
    r.lens_positions = r.n_pos;
    for (int64_t l = 0; l < c.n_layers; ++l) {
      if (!resid[l].defined()) continue;
      at::Tensor lg = at::matmul(final_norm(model, resid[l]), wu.t());  // (pos, d_vocab)
      if (w.b_u.defined()) lg = lg + w.b_u.to(at::kCPU).to(at::kFloat);
      auto [mv, mi] = at::softmax(lg, -1).max(-1);
      at::Tensor mvc = mv.contiguous(), mic = mi.contiguous();
      const float* pv = mvc.data_ptr<float>();
      const int64_t* pi = mic.data_ptr<int64_t>();
      for (int64_t t = 0; t < r.n_pos; ++t) {
        LensCell cell;
        cell.id = static_cast<int32_t>(pi[t]);
        cell.prob = pv[t];
        cell.token = token_display(model, cell.id);
        r.lens.push_back(cell);
      }
    }
  }
  if (!req.ablate.empty() || !req.calibrate.empty()) {
    HookRegistry ab;
    auto head_name = [](int l, int h) { return std::to_string(l) + "." + std::to_string(h); };
    for (auto [l, h] : req.ablate) {
      if (l < 0 || h < 0 || l >= c.n_layers || h >= c.n_heads) fail_input("ablate: no head " + head_name(l, h));
      int head = h;
      ab.add_forward("blocks." + std::to_string(l) + ".attn.hook_z", [head](const at::Tensor& z, const HookContext&) {
        at::Tensor out = z.clone();  // (batch, pos, n_heads, d_head)
        out.select(2, head).zero_();
        return out;
      });
      r.intervention += (r.intervention.empty() ? "" : "; ") + std::string("ablated ") + head_name(l, h);
    }
    // Hidden sinks of the calibrated heads, from their patterns in this pass: alpha_k, the mean
    // attention key k gets from the queries that see it (Gu et al.), above the threshold.
    std::vector<HeadRef> heads;
    std::vector<int64_t> sinks;
    for (auto [l, h] : req.calibrate) {
      if (l < 0 || h < 0 || l >= c.n_layers || h >= c.n_heads) fail_input("calibrate: no head " + head_name(l, h));
      auto pat = r.pattern(l, h);
      if (!pat) fail_input("calibrate: head " + head_name(l, h) + "'s pattern is not kept for a prompt this long");
      heads.push_back({l, h});
      for (int64_t k = 1; k < r.n_pos; ++k) {
        double sum = 0;
        for (int64_t q = k; q < r.n_pos; ++q) sum += (*pat)[q * r.n_pos + k];
        if (sum / double(r.n_pos - k) > req.calibrate_threshold && std::find(sinks.begin(), sinks.end(), k) == sinks.end())
          sinks.push_back(k);
      }
      r.intervention += (r.intervention.empty() ? "" : "; ") + std::string("calibrated ") + head_name(l, h);
    }
    std::sort(sinks.begin(), sinks.end());
    if (!req.calibrate.empty()) {
      std::string at_pos;
      for (int64_t k : sinks) at_pos += (at_pos.empty() ? "" : ",") + std::to_string(k);
      r.intervention += " (beta " + std::to_string(req.beta).substr(0, 4) + ", hidden sinks at " +
                        (at_pos.empty() ? std::string("none") : at_pos) + ")";
    }
    SinkCalibration calib(heads, sinks, req.beta);
    ForwardOptions ao;
    ao.hooks = req.ablate.empty() ? nullptr : &ab;
    ao.attention = heads.empty() ? nullptr : &calib;
    ao.last_logits_only = true;
    at::Tensor ap = at::softmax(model.forward(model.tokens_tensor(req.ids), ao).reshape({-1}).to(at::kFloat), 0);
    r.ablated = req.ablate;
    for (const Prediction& p : r.top) r.top_prob_ablated.push_back(ap[p.id].item<double>());
    auto [av, ai] = ap.topk(k);
    for (int i = 0; i < k; ++i) {
      Prediction p;
      p.id = static_cast<int32_t>(ai[i].item<int64_t>());
      p.prob = av[i].item<double>();
      p.token = token_display(model, p.id);
      r.top_ablated.push_back(p);
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace ms::views
