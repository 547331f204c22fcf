// compute_forward: one forward pass that records the patterns shown (attention observer), the
// streaming attention statistics (alpha_k), the logit lens and the next-token distribution, and an
// optional second pass with heads ablated or calibrated. Every number comes from core.
#include "views/forward_result.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>

#include "core/analysis/circuits/patching.h"
#include "core/analysis/heads/head_ablation.h"
#include "core/analysis/task_metrics.h"
#include "core/features/sae_dashboard.h"
#include "core/features/sae_splice.h"
#include "core/analysis/lens/logit_lens.h"
#include "core/analysis/sinks/hidden_sinks.h"
#include "core/analysis/sinks/sinks.h"
#include "core/attention/attention_stats.h"
#include "core/attention/observer_chain.h"
#include "core/model/context_warning.h"
#include "core/io/npy.h"
#include "core/tokenizer/token_label.h"
#include "hooks/activation_cache.h"
#include "hooks/hook_names.h"

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

std::vector<std::pair<int64_t, float>> ForwardResult::top_positions(int64_t col, int k) const {
  std::vector<std::pair<int64_t, float>> out;
  if (!act_matrix || col < 0 || col >= act_cols) return out;
  for (int64_t t = 0; t < act_rows; ++t) out.push_back({t, (*act_matrix)[static_cast<size_t>(t * act_cols + col)]});
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (static_cast<int64_t>(out.size()) > k) out.resize(static_cast<size_t>(k));
  return out;
}

std::shared_ptr<const HeatLevel> ForwardResult::thumb(int64_t layer, int64_t head) const {
  size_t i = static_cast<size_t>(layer * n_heads + head);
  if (layer < 0 || head < 0 || layer >= n_layers || head >= n_heads || i >= thumbs.size()) return nullptr;
  return thumbs[i];
}

std::shared_ptr<const std::vector<float>> ForwardResult::layer_mean(int64_t layer) const {
  if (layer < 0 || layer >= static_cast<int64_t>(layer_means.size())) return nullptr;
  return layer_means[static_cast<size_t>(layer)];
}

namespace {
// Copies the blocks of the wanted heads into full [query, key] matrices for display (masked and
// future keys stay NaN), max-pools thumbnails of the wanted heads and sums the head averages, all
// in the one pass over each block.
class PatternRecorder : public AttentionObserver {
 public:
  PatternRecorder(int64_t n_layers, int64_t n_heads, int64_t n_pos, bool keep_all, int64_t keep_layer,
                  int64_t keep_head, bool means)
      : m_L(n_layers), m_H(n_heads), m_T(n_pos) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const size_t tt = static_cast<size_t>(n_pos * n_pos);
    m_factor = static_cast<int>((n_pos + ForwardResult::kThumbSide - 1) / ForwardResult::kThumbSide);
    const int side = static_cast<int>((n_pos + m_factor - 1) / m_factor);
    m_patterns.resize(static_cast<size_t>(n_layers * n_heads));
    m_thumbs.resize(m_patterns.size());
    m_layer_means.resize(static_cast<size_t>(n_layers));
    for (int64_t l = 0; l < n_layers; ++l) {
      const bool layer_kept = keep_all || l == keep_layer;
      if (means && layer_kept) m_layer_means[l] = std::make_shared<std::vector<float>>(tt, 0.f);
      for (int64_t h = 0; h < n_heads; ++h) {
        if (keep_all || (l == keep_layer && h == keep_head))
          m_patterns[l * n_heads + h] = std::make_shared<std::vector<float>>(tt, nan);
        if (layer_kept) {
          auto t = std::make_shared<HeatLevel>();
          t->rows = t->cols = side;
          t->factor = m_factor;
          t->values.assign(static_cast<size_t>(side) * side, nan);
          m_thumbs[l * n_heads + h] = t;
        }
      }
    }
    if (means) m_all_mean = std::make_shared<std::vector<float>>(tt, 0.f);
  }
  bool wants_layer(int64_t layer) const override {
    if (m_all_mean || m_layer_means[layer]) return true;
    for (int64_t h = 0; h < m_H; ++h)
      if (m_patterns[layer * m_H + h] || m_thumbs[layer * m_H + h]) return true;
    return false;
  }
  void on_block(AttentionBlock& b) override {
    at::Tensor p = b.pattern.select(0, 0).to(at::kCPU, at::kFloat).contiguous();  // (H, nq, nk)
    at::Tensor vis = visible_keys(b).to(at::kCPU).contiguous();                   // (nq, nk)
    const float* pp = p.data_ptr<float>();
    const bool* vv = vis.data_ptr<bool>();
    const float inv_h = 1.0f / static_cast<float>(m_H), inv_lh = inv_h / static_cast<float>(m_L);
    auto& lmean = m_layer_means[b.layer];
    for (int64_t h = 0; h < m_H; ++h) {
      auto& dst = m_patterns[b.layer * m_H + h];
      auto& thumb = m_thumbs[b.layer * m_H + h];
      if (!dst && !thumb && !lmean && !m_all_mean) continue;
      for (int64_t i = 0; i < b.n_queries; ++i) {
        const int64_t q = b.q_begin + i;
        const float* src = pp + (h * b.n_queries + i) * b.n_keys;
        const bool* v = vv + i * b.n_keys;
        const size_t at_row = static_cast<size_t>(q * m_T + b.k_begin);
        if (dst) {
          float* row = dst->data() + at_row;
          for (int64_t j = 0; j < b.n_keys; ++j)
            if (v[j]) row[j] = src[j];
        }
        if (thumb) {
          float* row = thumb->values.data() + static_cast<size_t>(q / m_factor) * thumb->cols;
          for (int64_t j = 0; j < b.n_keys; ++j) {
            float& t = row[(b.k_begin + j) / m_factor];
            if (v[j] && !(t >= src[j])) t = src[j];  // NaN (nothing yet) or smaller
          }
        }
        if (lmean) {
          float* row = lmean->data() + at_row;
          for (int64_t j = 0; j < b.n_keys; ++j)
            if (v[j]) row[j] += src[j] * inv_h;
        }
        if (m_all_mean) {
          float* row = m_all_mean->data() + at_row;
          for (int64_t j = 0; j < b.n_keys; ++j)
            if (v[j]) row[j] += src[j] * inv_lh;
        }
      }
    }
  }
  int64_t m_L, m_H, m_T;
  int m_factor = 1;
  std::vector<std::shared_ptr<std::vector<float>>> m_patterns;
  std::vector<std::shared_ptr<HeatLevel>> m_thumbs;
  std::vector<std::shared_ptr<std::vector<float>>> m_layer_means;
  std::shared_ptr<std::vector<float>> m_all_mean;
};

std::vector<HeadRef> head_refs(const std::vector<std::pair<int, int>>& heads) {
  std::vector<HeadRef> out;
  for (auto [l, h] : heads) out.push_back({l, h});
  return out;
}

std::vector<Prediction> top_predictions(const Model& model, const at::Tensor& probs, int k) {
  std::vector<Prediction> out;
  auto [pv, pi] = probs.topk(k);
  for (int i = 0; i < k; ++i) {
    Prediction p;
    p.id = static_cast<int32_t>(pi[i].item<int64_t>());
    p.prob = pv[i].item<double>();
    p.token = token_display(token_label(model, p.id));
    out.push_back(p);
  }
  return out;
}

void fill_lens(const Model& model, const LogitLens& lens, ForwardResult& r) {
  r.lens_positions = r.n_pos;
  for (int64_t l = 0; l < r.n_layers; ++l) {
    if (!lens.residual(l).defined()) continue;
    std::vector<int64_t> next(static_cast<size_t>(r.n_pos), -1);  // the actual next token of each position
    for (int64_t t = 0; t + 1 < r.n_pos; ++t) next[static_cast<size_t>(t)] = r.ids[static_cast<size_t>(t + 1)];
    LogitLens::TopK top = lens.topk(lens.residual(l), 5, at::tensor(next, at::kLong));
    const int64_t k = top.ids.size(1);
    const float* pv = top.probs.data_ptr<float>();
    const int64_t* pi = top.ids.data_ptr<int64_t>();
    const int64_t* rank = top.target_rank.data_ptr<int64_t>();
    const float* tp = top.target_prob.data_ptr<float>();
    for (int64_t t = 0; t < r.n_pos; ++t) {
      LensCell cell;
      cell.id = static_cast<int32_t>(pi[t * k]);
      cell.prob = pv[t * k];
      cell.token = token_display(token_label(model, cell.id));
      for (int64_t j = 0; j < k; ++j)
        cell.top.push_back({token_display(token_label(model, static_cast<int32_t>(pi[t * k + j]))), pv[t * k + j]});
      cell.next_rank = rank[t];
      cell.next_prob = tp[t];
      r.lens.push_back(cell);
    }
  }
}

// The second pass: the chosen heads ablated (core/analysis/heads/head_ablation.h) and/or
// calibrated on their hidden sinks (ACT, core/analysis/sinks/sinks.h) found from this prompt's
// alpha_k (AttentionStats, the sinks analysis' own path).
void intervene(const Model& model, const ForwardRequest& req, const at::Tensor& alpha, int k, ForwardResult& r) {
  const ModelConfig& c = model.config();
  std::vector<HeadRef> ablate = head_refs(req.ablate), heads = head_refs(req.calibrate);
  HookRegistry ab;
  add_head_ablation(ab, c, ablate);
  for (const HeadRef& h : ablate) r.intervention += (r.intervention.empty() ? "" : "; ") + std::string("ablated ") + h.name();
  for (const HeadRef& h : heads) {
    if (h.layer < 0 || h.head < 0 || h.layer >= c.n_layers || h.head >= c.n_heads)
      fail_input("calibrate: no head " + h.name());
    r.intervention += (r.intervention.empty() ? "" : "; ") + std::string("calibrated ") + h.name();
  }
  std::vector<int64_t> sinks = hidden_sink_positions(alpha, heads, req.calibrate_threshold);
  if (!heads.empty()) {
    std::string at_pos;
    for (int64_t s : sinks) at_pos += (at_pos.empty() ? "" : ",") + std::to_string(s);
    r.intervention += " (beta " + std::to_string(req.beta).substr(0, 4) + ", hidden sinks at " +
                      (at_pos.empty() ? std::string("none") : at_pos) + ")";
  }
  SinkCalibration calib(heads, sinks, req.beta);
  std::unique_ptr<SaeSplice> splice;
  const bool steer = req.sae && req.steer_feature >= 0;
  if (steer) {
    splice = std::make_unique<SaeSplice>(ab, req.sae);
    ab.add_forward(splice->hook_names()[static_cast<int>(SaeStage::kActsPost)],
                   steer_feature_hook(req.steer_feature, req.steer_value));
    char buf[96];
    std::snprintf(buf, sizeof buf, "feature %lld %+.3g at %s", static_cast<long long>(req.steer_feature), req.steer_value,
                  req.sae->cfg.hook_name.c_str());
    r.intervention += (r.intervention.empty() ? "" : "; ") + std::string(buf);
  }
  ForwardOptions ao;
  ao.hooks = ablate.empty() && !steer ? nullptr : &ab;
  ao.attention = heads.empty() ? nullptr : &calib;
  ao.last_logits_only = !req.contributions;
  at::Tensor al = model.forward(model.tokens_tensor(req.ids), ao);  // (1, T or 1, d_vocab)
  if (req.contributions) {
    r.diff_ablated = logit_diff_per_position(al, r.answer, r.wrong);
    r.loss_ablated = loss_per_position(al, req.ids);
  }
  at::Tensor ap = at::softmax(al[0][-1].to(at::kFloat), 0);
  r.ablated = req.ablate;
  for (const Prediction& p : r.top) r.top_prob_ablated.push_back(ap[p.id].item<double>());
  r.top_ablated = top_predictions(model, ap, k);
}
// The Contributions window's numbers from the clean pass's full logits (1, T, V): the answer and
// wrong tokens, per-position metrics of the clean and corrupted prompts, and core's DLA.
void contributions(const Model& model, const ForwardRequest& req, const at::Tensor& logits, ForwardResult& r) {
  const ModelConfig& c = model.config();
  r.contrib_pos = req.contrib_pos < 0 || req.contrib_pos >= r.n_pos ? r.n_pos - 1 : req.contrib_pos;
  at::Tensor probs = at::softmax(logits[0][r.contrib_pos].to(at::kFloat), 0);
  r.pos_top = top_predictions(model, probs, std::min<int>(10, static_cast<int>(probs.size(0))));
  r.answer = req.answer >= 0 && req.answer < c.d_vocab ? req.answer : r.pos_top[0].id;
  r.wrong = req.wrong >= 0 && req.wrong < c.d_vocab && req.wrong != r.answer ? req.wrong : -1;
  r.answer_token = token_display(token_label(model, r.answer));
  if (r.wrong >= 0) r.wrong_token = token_display(token_label(model, r.wrong));
  r.diff_clean = logit_diff_per_position(logits, r.answer, r.wrong);
  r.loss_clean = loss_per_position(logits, req.ids);
  if (!req.corrupted_ids.empty()) {
    r.corrupted_ids = req.corrupted_ids;
    for (int32_t id : req.corrupted_ids) r.corrupted_tokens.push_back(token_display(token_label(model, id)));
    at::Tensor cl = model.forward(model.tokens_tensor(req.corrupted_ids));  // (1, T', V)
    r.diff_corrupted = logit_diff_per_position(cl, r.answer, r.wrong);
    r.loss_corrupted = loss_per_position(cl, req.corrupted_ids);
  }
  TaskPairs task;
  task.name = "workbench";
  task.clean = task.corrupted = model.tokens_tensor(req.ids);
  task.answer_pos = {r.contrib_pos};
  task.answer = {r.answer};
  task.distractor = {r.wrong};
  DlaResult dla = direct_logit_attribution(model, task);
  at::Tensor ph = dla.per_head.contiguous();
  r.dla_heads.assign(ph.data_ptr<double>(), ph.data_ptr<double>() + ph.numel());
  r.dla_bias = dla.bias_terms;
  for (size_t i = 0; i < dla.components.size(); ++i) {
    const std::string& n = dla.components[i];
    const double v = dla.per_component[i];
    if (n == "embed") {
      r.dla_embed = v;
    } else if (n.rfind("mlp", 0) == 0) {
      r.dla_mlp.push_back(v);
    } else if (n.rfind("attn", 0) == 0) {  // the layer's attention output less its heads: b_O
      const int64_t l = std::stoll(n.substr(4));
      r.dla_bias += v - dla.per_head[l].sum().item<double>();
    }
  }
  r.dla_total = dla.logit_diff;
  r.dla_notes = dla.notes;
}

// The Activations window's hook point, from the clean pass's cache.
void fill_activation(const ForwardRequest& req, const ActivationCache& cache, ForwardResult& r) {
  r.act_name = req.cache_hook;
  if (!cache.contains(req.cache_hook)) {
    r.act_error = "this model has no hook point '" + req.cache_hook + "'";
    return;
  }
  r.act = cache.at(req.cache_hook).to(at::kCPU, at::kFloat).contiguous();
  HookAxes ax = hook_axes(req.cache_hook);
  at::Tensor a = r.act[0];                                   // batch 0: pos first unless the name says otherwise
  const int pos = ax.pos - 1, head = ax.head - 1;            // axes without the batch
  at::Tensor m = a.movedim(pos, 0).contiguous();             // (pos, ...)
  r.act_rows = m.size(0);
  m = m.reshape({r.act_rows, -1}).contiguous();
  r.act_cols = m.size(1);
  r.act_matrix = std::make_shared<const std::vector<float>>(m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
  if (head >= 0) {  // columns are (head, rest): "H<head>:<index>"
    const int64_t n_heads = a.size(head), per = r.act_cols / std::max<int64_t>(1, n_heads);
    for (int64_t j = 0; j < r.act_cols; ++j)
      r.act_col_labels.push_back("H" + std::to_string(j / per) + ":" + std::to_string(j % per));
  }
}
}  // namespace

int32_t parse_token(const Model& model, const std::string& text) {
  const int64_t V = model.config().d_vocab;
  if (text.empty()) fail_input("token: nothing given");
  if (text[0] == '#' || !model.tokenizer()) {
    const std::string digits = text[0] == '#' ? text.substr(1) : text;
    char* end = nullptr;
    long v = std::strtol(digits.c_str(), &end, 10);
    if (digits.empty() || *end != 0 || v < 0 || v >= V)
      fail_input("token '" + text + "': not a token id in [0, " + std::to_string(V) + ")");
    return static_cast<int32_t>(v);
  }
  std::vector<int32_t> ids = model.tokenizer()->encode(text, false);
  if (ids.size() != 1)
    fail_input("token '" + text + "' is " + std::to_string(ids.size()) +
               " tokens, not one (write #ID for a token id; a leading space is often part of the token)");
  return ids[0];
}

NpyExport export_cache_npy(const Model& model, const std::vector<int32_t>& ids, const std::string& pattern,
                           const std::string& folder, RunControl* control) {
  namespace fs = std::filesystem;
  if (ids.empty()) fail_input("export: the prompt has no tokens");
  NpyExport out;
  if (control && control->interrupted()) {
    out.cancelled = true;
    return out;
  }
  at::NoGradGuard no_grad;
  HookRegistry hooks;
  ActivationCache cache;
  hooks.add_forward(pattern, cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &hooks;  // every position (last_logits_only would leave ln_final's points at the last one)
  model.forward(model.tokens_tensor(ids), fo);
  if (cache.size() == 0) fail_input("export: '" + pattern + "' matches no hook point of this model");
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) fail_input(folder + ": cannot create the folder: " + ec.message());
  out.total = static_cast<int64_t>(cache.size());
  if (control) control->update(0, out.total);
  for (const auto& [name, t] : cache.items()) {
    if (control && control->interrupted()) {  // between files: those written stay whole
      out.cancelled = true;
      break;
    }
    std::string path = (fs::path(folder) / (name + ".npy")).string();
    Status st = write_npy(path, t);  // PATH.tmp, then renamed
    if (!st) fail_input(st.error().message);
    out.paths.push_back(path);
    if (control) control->update(static_cast<int64_t>(out.paths.size()), out.total);
  }
  return out;
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
  for (int32_t id : req.ids) r.tokens.push_back(token_display(token_label(model, id)));
  r.context_note = context_warning(c, r.n_pos);
  bool keep_all = c.n_layers * c.n_heads * r.n_pos * r.n_pos <= req.max_full_floats;
  PatternRecorder rec(c.n_layers, c.n_heads, r.n_pos, keep_all, req.keep_layer, req.keep_head, req.head_means);
  AttentionStats stats(c.n_layers, c.n_heads, 1, r.n_pos, AttentionStatsOptions{false});
  ObserverChain observers({&rec, &stats});

  const bool lens_on = req.lens && r.n_pos <= req.max_lens_positions;
  LogitLens lens(model);
  HookRegistry hooks;
  if (lens_on) lens.attach(hooks);
  ActivationCache act_cache;
  if (!req.cache_hook.empty()) hooks.add_forward(req.cache_hook, cache_hook(act_cache));
  ForwardOptions opts;
  opts.attention = &observers;
  opts.hooks = hooks.empty() ? nullptr : &hooks;
  opts.last_logits_only = !req.contributions;
  at::NoGradGuard no_grad;
  at::Tensor logits = model.forward(model.tokens_tensor(req.ids), opts);  // (1, 1 or n_pos, d_vocab)
  at::Tensor probs = at::softmax(logits[0][-1].to(at::kFloat), 0);
  const int k = std::min<int>(req.top_k, static_cast<int>(probs.size(0)));
  r.top = top_predictions(model, probs, k);
  for (auto& p : rec.m_patterns) {
    r.patterns.push_back(p);
    bool big = p && r.n_pos > 256;
    r.prepared.push_back(big ? prepare_heatmap(p->data(), int(r.n_pos), int(r.n_pos)) : nullptr);
  }
  r.thumbs.assign(rec.m_thumbs.begin(), rec.m_thumbs.end());
  r.layer_means.assign(rec.m_layer_means.begin(), rec.m_layer_means.end());
  r.all_heads_mean = rec.m_all_mean;
  at::Tensor alpha = stats.alpha().select(1, 0);  // (layer, head, key)
  at::Tensor a0 = alpha.select(-1, 0).to(at::kDouble).contiguous().view(-1);
  r.alpha0.assign(a0.data_ptr<double>(), a0.data_ptr<double>() + a0.numel());
  if (lens_on) fill_lens(model, lens, r);
  if (!req.cache_hook.empty()) fill_activation(req, act_cache, r);
  if (req.contributions) contributions(model, req, logits, r);
  if (req.sae && req.top_features > 0) r.features = prompt_top_features(model, *req.sae, req.ids, req.top_features);
  if (!req.ablate.empty() || !req.calibrate.empty() || (req.sae && req.steer_feature >= 0)) intervene(model, req, alpha, k, r);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace ms::views
