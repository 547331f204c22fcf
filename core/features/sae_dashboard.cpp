// Streaming feature dashboards: one forward (to the SAE's layer) per run of same-length prompts,
// one encode per batch of positions, then one pass over the batch's [tokens, features] activations
// that counts, bins and offers candidates to each feature's bounded top-k. Ties between equal
// activations go to the earlier (prompt, position), so the result does not depend on batching.
#include "core/features/sae_dashboard.h"
#include "core/base/parallel.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/features/sae_load.h"
#include "core/model/model.h"
#include "core/tokenizer/token_label.h"
#include "hooks/activation_cache.h"
#include "hooks/hook_names.h"

namespace ms {
namespace {

struct Candidate {
  float act = 0;
  int64_t prompt = 0, pos = 0;
  int64_t row = -1;  // row in the current batch (-1: from an earlier batch)
};
// a ranks before b: larger activation, then the earlier (prompt, position).
bool ranks_before(const Candidate& a, const Candidate& b) {
  if (a.act != b.act) return a.act > b.act;
  return a.prompt != b.prompt ? a.prompt < b.prompt : a.pos < b.pos;
}

// The window of feature column f around a candidate, from the batch's activations.
FeatureExample make_window(const float* a, int64_t F, int64_t f, const DashboardRow& src, const Candidate& c,
                           int context, const std::vector<std::vector<int32_t>>& prompts) {
  FeatureExample e;
  e.prompt = c.prompt;
  e.position = c.pos;
  e.activation = c.act;
  const int64_t lo = std::max<int64_t>(0, c.pos - context);
  const int64_t hi = std::min<int64_t>(src.len, c.pos + context + 1);
  e.window_start = lo;
  const std::vector<int32_t>& ids = prompts[static_cast<size_t>(c.prompt)];
  for (int64_t p = lo; p < hi; ++p) {
    e.token_ids.push_back(ids[static_cast<size_t>(p)]);
    e.acts.push_back(a[(src.row0 + p) * F + f]);
  }
  return e;
}

// The layer to stop before: the hook's layer + 1 (a top-level hook needs the whole pass).
int64_t stop_layer(const Model& m, const std::string& hook) {
  const int L = hook_layer(hook);
  if (L < 0 || L + 1 >= m.config().n_layers) return -1;
  return L + 1;
}

// x [rows, d_in] at the SAE's hook for a run of prompts of one length.
at::Tensor sae_inputs(const Model& m, const Sae& sae, const std::vector<std::vector<int32_t>>& prompts,
                      size_t first, size_t count) {
  const int64_t T = static_cast<int64_t>(prompts[first].size());
  std::vector<int64_t> flat;
  flat.reserve(count * static_cast<size_t>(T));
  for (size_t i = first; i < first + count; ++i)
    for (int32_t id : prompts[i]) flat.push_back(id);
  at::Tensor tokens = at::tensor(flat, at::kLong).view({static_cast<int64_t>(count), T}).to(m.device());
  HookRegistry reg;
  ActivationCache cache;
  reg.add_forward(sae.cfg.hook_name, cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &reg;
  fo.stop_at_layer = stop_layer(m, sae.cfg.hook_name);
  m.forward(tokens, fo);
  return sae.to_input(cache.at(sae.cfg.hook_name)).to(at::kFloat).reshape({-1, sae.cfg.d_in});
}

std::vector<int64_t> chosen_features(const Sae& sae, const DashboardOptions& o) {
  const int64_t d_sae = sae.cfg.d_sae;
  std::vector<int64_t> f = o.features;
  if (f.empty()) {
    f.resize(static_cast<size_t>(d_sae));
    for (int64_t i = 0; i < d_sae; ++i) f[static_cast<size_t>(i)] = i;
  }
  for (int64_t i : f)
    if (i < 0 || i >= d_sae)
      fail_input(sae.cfg.source + ": feature " + std::to_string(i) + " is out of range; the SAE has d_sae = " +
                 std::to_string(d_sae) + " features (0.." + std::to_string(d_sae - 1) + ")");
  return f;
}

}  // namespace

DashboardAccumulator::DashboardAccumulator(std::vector<int64_t> features, const DashboardOptions& o)
    : m_o(o), m_features(std::move(features)), m_examples(m_features.size()) {
  const size_t F = m_features.size();
  m_count.assign(F, 0);
  m_max.assign(F, 0.0f);
  m_hmax.assign(F, 0.0);
  m_thr.assign(F, 0.0f);
  m_hist.assign(F * static_cast<size_t>(o.n_bins), 0);
}

void DashboardAccumulator::add(const at::Tensor& acts, const std::vector<DashboardRow>& rows,
                               const std::vector<std::vector<int32_t>>& prompts) {
  const int64_t N = acts.size(0), F = acts.size(1);
  if (F != static_cast<int64_t>(m_features.size()) || N != static_cast<int64_t>(rows.size()) ||
      acts.scalar_type() != at::kFloat || !acts.is_contiguous() || !acts.device().is_cpu())
    throw std::invalid_argument("DashboardAccumulator::add: acts must be float32 CPU [rows, features]");
  if (N == 0) return;
  const float* a = acts.data_ptr<float>();
  const int nb = m_o.n_bins;
  const size_t k = static_cast<size_t>(m_o.top_k);
  // 1. The batch maximum per feature; a raised histogram range merges bins pairwise.
  at::Tensor bmax = acts.amax(0).contiguous();  // (F)
  const float* bm = bmax.data_ptr<float>();
  for (int64_t f = 0; f < F; ++f) {
    const size_t fi = static_cast<size_t>(f);
    if (!(bm[f] > m_max[fi])) continue;
    m_max[fi] = bm[f];
    const double h = dashboard_hist_max(bm[f]);
    if (m_hmax[fi] > 0 && h > m_hmax[fi]) {
      const int shift = std::min(62, static_cast<int>(std::lround(std::log2(h / m_hmax[fi]))));
      int64_t* hist = &m_hist[fi * static_cast<size_t>(nb)];
      std::vector<int64_t> merged(static_cast<size_t>(nb), 0);
      for (int i = 0; i < nb; ++i) merged[static_cast<size_t>(i >> shift)] += hist[i];
      std::copy(merged.begin(), merged.end(), hist);
    }
    m_hmax[fi] = std::max(m_hmax[fi], h);
  }
  // 2. Count, bin and collect each feature's batch candidates: a bounded heap, the worst on top,
  // of the rows above the feature's current k-th activation.
  std::vector<std::vector<Candidate>> cand(static_cast<size_t>(F));
  ms::parallel_for(0, F, 64, [&](int64_t f0, int64_t f1) {
    std::vector<float> cut(static_cast<size_t>(f1 - f0));
    for (int64_t f = f0; f < f1; ++f) cut[static_cast<size_t>(f - f0)] = m_thr[static_cast<size_t>(f)];
    for (int64_t r = 0; r < N; ++r) {
      const float* row = a + r * F;
      for (int64_t f = f0; f < f1; ++f) {
        const float v = row[f];
        if (!(v > 0)) continue;
        const size_t fi = static_cast<size_t>(f);
        ++m_count[fi];
        ++m_hist[fi * static_cast<size_t>(nb) + static_cast<size_t>(dashboard_bin(v, m_hmax[fi], nb))];
        float& c = cut[static_cast<size_t>(f - f0)];
        if (!(v > c)) continue;  // an equal activation of a later row never ranks before
        std::vector<Candidate>& h = cand[fi];
        const DashboardRow& src = rows[static_cast<size_t>(r)];
        h.push_back({v, src.prompt, src.pos, r});
        std::push_heap(h.begin(), h.end(), ranks_before);
        if (h.size() > k) {
          std::pop_heap(h.begin(), h.end(), ranks_before);
          h.pop_back();
        }
        if (h.size() == k) c = std::max(c, h.front().act);
      }
    }
  });
  // 3. Merge into the running top-k; new members take their window from this batch.
  ms::parallel_for(0, F, 256, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      const size_t fi = static_cast<size_t>(f);
      if (cand[fi].empty()) continue;
      std::vector<FeatureExample>& ex = m_examples[fi];
      std::vector<Candidate> all;
      all.reserve(ex.size() + cand[fi].size());
      for (size_t i = 0; i < ex.size(); ++i)
        all.push_back({ex[i].activation, ex[i].prompt, ex[i].position, -1 - static_cast<int64_t>(i)});
      all.insert(all.end(), cand[fi].begin(), cand[fi].end());
      std::sort(all.begin(), all.end(), ranks_before);
      if (all.size() > k) all.resize(k);
      std::vector<FeatureExample> next;
      next.reserve(all.size());
      for (const Candidate& c : all)
        next.push_back(c.row < 0 ? std::move(ex[static_cast<size_t>(-1 - c.row)])
                                 : make_window(a, F, f, rows[static_cast<size_t>(c.row)], c, m_o.context, prompts));
      ex = std::move(next);
      m_thr[fi] = ex.size() == k ? ex.back().activation : 0.0f;
    }
  });
}

FeatureCard DashboardAccumulator::card(size_t i, int64_t n_tokens) {
  FeatureCard c;
  c.feature = m_features[i];
  c.n_tokens = n_tokens;
  c.n_firing = m_count[i];
  c.max_act = m_max[i];
  c.hist_max = m_hmax[i];
  const size_t nb = static_cast<size_t>(m_o.n_bins);
  c.histogram.assign(m_hist.begin() + static_cast<std::ptrdiff_t>(i * nb),
                     m_hist.begin() + static_cast<std::ptrdiff_t>((i + 1) * nb));
  c.examples = std::move(m_examples[i]);
  for (size_t r = 0; r < c.examples.size(); ++r) c.examples[r].rank = static_cast<int>(r);
  return c;
}

double dashboard_hist_max(float max_act) {
  if (!(max_act > 0)) return 0.0;
  int e = 0;
  std::frexp(static_cast<double>(max_act), &e);  // max_act = m * 2^e, m in [0.5, 1)
  return std::ldexp(1.0, e);                     // 2^e > max_act
}

int64_t dashboard_bin(float a, double hist_max, int n_bins) {
  // Exact in double: a has 24 bits, n_bins fewer than 30, hist_max a power of two.
  const int64_t b = static_cast<int64_t>(std::floor(static_cast<double>(a) * n_bins / hist_max));
  return std::min<int64_t>(std::max<int64_t>(b, 0), n_bins - 1);
}

std::vector<FeatureCard> feature_dashboards(const Model& model, const Sae& sae,
                                            const std::vector<std::vector<int32_t>>& prompts,
                                            const DashboardOptions& opts, const DashboardProgress& progress,
                                            const std::atomic<bool>* cancel, DashboardStats* stats) {
  c10::InferenceMode guard;
  if (prompts.empty()) fail_usage("feature dashboards need at least one prompt");
  if (opts.top_k < 1 || opts.context < 0 || opts.n_bins < 1 || opts.n_bins > (1 << 20) || opts.n_logits < 0)
    fail_usage("feature dashboards: top_k >= 1, context >= 0, 1 <= n_bins <= 2^20, n_logits >= 0");
  Status fits = check_sae_fits(sae, model);
  if (!fits) throw InputError(fits.error().message, fits.error().code);
  const std::vector<int64_t> features = chosen_features(sae, opts);
  const bool all = static_cast<int64_t>(features.size()) == sae.cfg.d_sae && opts.features.empty();
  at::Tensor sel = at::tensor(features, at::kLong).to(model.device());
  const int64_t budget = opts.batch_tokens > 0 ? opts.batch_tokens
                                               : std::max<int64_t>(1, (int64_t{1} << 25) / std::max<int64_t>(1, sae.cfg.d_sae));
  const int32_t bos = model.config().bos_token_id;
  DashboardAccumulator s(features, opts);
  DashboardStats st;
  const size_t n = prompts.size();
  size_t i = 0;
  while (i < n) {
    if (cancel && cancel->load()) break;
    // One encode batch: whole prompts up to the budget (at least one).
    size_t j = i;
    int64_t rows = 0;
    while (j < n && (j == i || rows + static_cast<int64_t>(prompts[j].size()) <= budget)) {
      if (prompts[j].empty()) fail_usage("prompt " + std::to_string(j) + " has no tokens");
      rows += static_cast<int64_t>(prompts[j].size());
      ++j;
    }
    std::vector<at::Tensor> xs;
    std::vector<DashboardRow> src;
    src.reserve(static_cast<size_t>(rows));
    for (size_t a = i; a < j;) {
      size_t b = a + 1;
      while (b < j && prompts[b].size() == prompts[a].size()) ++b;
      xs.push_back(sae_inputs(model, sae, prompts, a, b - a));
      a = b;
    }
    int64_t row0 = 0;
    std::vector<int64_t> bos_rows;
    for (size_t p = i; p < j; ++p) {
      const int64_t len = static_cast<int64_t>(prompts[p].size());
      for (int64_t q = 0; q < len; ++q) src.push_back({static_cast<int64_t>(p), q, row0, len});
      if (opts.skip_bos && bos >= 0 && prompts[p][0] == bos) bos_rows.push_back(row0);
      row0 += len;
    }
    at::Tensor acts = sae.encode(at::cat(xs, 0));  // (rows, d_sae)
    if (!all) acts = acts.index_select(1, sel);
    acts = acts.to(at::kCPU, at::kFloat).contiguous();
    if (!bos_rows.empty()) acts.index_fill_(0, at::tensor(bos_rows, at::kLong), 0.0f);  // left out
    s.add(acts, src, prompts);
    st.n_tokens += rows - static_cast<int64_t>(bos_rows.size());
    st.peak_batch_tokens = std::max(st.peak_batch_tokens, rows);
    ++st.n_batches;
    i = j;
    if (progress) progress(static_cast<int64_t>(i), static_cast<int64_t>(n));
  }
  std::vector<size_t> order(features.size());
  for (size_t f = 0; f < order.size(); ++f) order[f] = f;
  if (opts.top_features > 0) {
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s.firing(a) > s.firing(b); });
    if (static_cast<int64_t>(order.size()) > opts.top_features) order.resize(static_cast<size_t>(opts.top_features));
  }
  std::vector<FeatureCard> cards;
  cards.reserve(order.size());
  for (size_t f : order) {
    cards.push_back(s.card(f, st.n_tokens));
    for (FeatureExample& e : cards.back().examples)
      for (int32_t id : e.token_ids) e.tokens.push_back(token_label(model, id));
  }
  fill_logit_effects(model, sae, cards, opts.n_logits);
  if (stats) *stats = st;
  return cards;
}

void fill_logit_effects(const Model& model, const Sae& sae, std::vector<FeatureCard>& cards, int n) {
  c10::InferenceMode guard;
  if (n <= 0 || cards.empty()) return;
  const ModelConfig& c = model.config();
  const SaeConfig& sc = sae.cfg;
  const std::string& out_hook = sae_is_transcoder(sc.arch) ? sc.hook_name_out : sc.hook_name;
  const int L = hook_layer(out_hook);
  // The decoder direction in the residual stream, [d_out] -> [d_model].
  std::function<at::Tensor(const at::Tensor&)> to_resid;
  const bool z = out_hook.size() >= 6 && out_hook.compare(out_hook.size() - 6, 6, "hook_z") == 0;
  const bool mlp_post = out_hook.find("mlp.hook_post") != std::string::npos;
  if (z && L >= 0) {
    at::Tensor w_o = model.weights().layers[static_cast<size_t>(L)].w_o.to(at::kCPU, at::kFloat);  // [d_model, q_dim]
    if (sc.hook_head_index >= 0) w_o = w_o.narrow(1, sc.hook_head_index * c.d_head, c.d_head);
    if (w_o.size(1) != sc.d_out) return;
    to_resid = [w_o](const at::Tensor& d) { return at::matmul(d, w_o.t()); };
  } else if (mlp_post && L >= 0) {
    at::Tensor w_out = model.weights().layers[static_cast<size_t>(L)].w_out.to(at::kCPU, at::kFloat);  // [d_model, d_mlp]
    if (w_out.size(1) != sc.d_out) return;
    to_resid = [w_out](const at::Tensor& d) { return at::matmul(d, w_out.t()); };
  } else if (sc.d_out == c.d_model && sc.hook_head_index < 0) {
    to_resid = [](const at::Tensor& d) { return d; };
  } else {
    return;  // no residual direction: no logit effects
  }
  at::Tensor w_u = model.weights().w_u.to(at::kCPU, at::kFloat);  // [d_vocab, d_model]
  at::Tensor w_dec = sae.w.W_dec.to(at::kCPU, at::kFloat);       // [d_sae, d_out]
  const int64_t kk = std::min<int64_t>(n, w_u.size(0));
  constexpr size_t kChunk = 256;  // features per matmul: bounds [chunk, d_vocab]
  for (size_t c0 = 0; c0 < cards.size(); c0 += kChunk) {
    const size_t c1 = std::min(cards.size(), c0 + kChunk);
    std::vector<int64_t> idx;
    for (size_t q = c0; q < c1; ++q) idx.push_back(cards[q].feature);
    at::Tensor dirs = to_resid(w_dec.index_select(0, at::tensor(idx, at::kLong)));  // (chunk, d_model)
    at::Tensor eff = at::matmul(dirs, w_u.t());                                      // (chunk, d_vocab)
    auto top = at::topk(eff, kk, 1, true, true);
    auto bot = at::topk(eff, kk, 1, false, true);
    at::Tensor tvt = std::get<0>(top).contiguous(), tit = std::get<1>(top).contiguous();
    at::Tensor bvt = std::get<0>(bot).contiguous(), bit = std::get<1>(bot).contiguous();
    auto tv = tvt.accessor<float, 2>(), bv = bvt.accessor<float, 2>();
    auto ti = tit.accessor<int64_t, 2>(), bi = bit.accessor<int64_t, 2>();
    for (size_t q = c0; q < c1; ++q) {
      const int64_t r = static_cast<int64_t>(q - c0);
      FeatureCard& card = cards[q];
      card.top_logits.clear();
      card.bottom_logits.clear();
      for (int64_t t = 0; t < kk; ++t) {
        const int32_t a = static_cast<int32_t>(ti[r][t]);
        const int32_t b = static_cast<int32_t>(bi[r][t]);
        card.top_logits.push_back({a, token_label(model, a), tv[r][t]});
        card.bottom_logits.push_back({b, token_label(model, b), bv[r][t]});
      }
    }
  }
}

std::vector<std::vector<std::pair<int64_t, float>>> prompt_top_features(const Model& model, const Sae& sae,
                                                                        const std::vector<int32_t>& ids, int n) {
  c10::InferenceMode guard;
  std::vector<std::vector<int32_t>> one{ids};
  at::Tensor acts = sae.encode(sae_inputs(model, sae, one, 0, 1)).to(at::kCPU, at::kFloat);  // (pos, d_sae)
  const int64_t kk = std::min<int64_t>(std::max(n, 1), acts.size(1));
  auto top = at::topk(acts, kk, 1, true, true);
  at::Tensor v = std::get<0>(top).contiguous(), idx = std::get<1>(top).contiguous();
  std::vector<std::vector<std::pair<int64_t, float>>> out(static_cast<size_t>(acts.size(0)));
  for (int64_t p = 0; p < acts.size(0); ++p)
    for (int64_t t = 0; t < kk; ++t) {
      const float a = v[p][t].item<float>();
      if (a > 0) out[static_cast<size_t>(p)].push_back({idx[p][t].item<int64_t>(), a});
    }
  return out;
}

}  // namespace ms
