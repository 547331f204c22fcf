// Discrete-SAE circuit identification: positives and negatives from a circuit task, head outputs,
// the shared SAE (hand-written gradients, Adam), integer codes and the per-head overlap score.
#include "core/analysis/circuits/dsae_circuit.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <set>

#include "hooks/activation_cache.h"
#include "hooks/hook_registry.h"

namespace ms {

at::Tensor head_output_vectors(const Model& m, const at::Tensor& tokens, const std::vector<int64_t>& answer_pos,
                               bool mean_positions) {
  at::NoGradGuard no_grad;
  const ModelConfig& c = m.config();
  ActivationCache cache;
  HookRegistry reg;
  reg.add_forward("blocks.*.attn.hook_result", cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &reg;
  m.forward(tokens, fo);
  const int64_t N = tokens.size(0);
  std::vector<at::Tensor> layers;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    at::Tensor r = cache.at("blocks." + std::to_string(l) + ".attn.hook_result").to(at::kDouble);  // (N, T, H, d)
    std::vector<at::Tensor> rows;
    for (int64_t i = 0; i < N; ++i) {
      const int64_t p = answer_pos[static_cast<size_t>(i)];
      rows.push_back(mean_positions ? r[i].slice(0, 0, p + 1).mean(0) : r[i][p]);  // (H, d)
    }
    layers.push_back(at::stack(rows));  // (N, H, d)
  }
  return at::cat(layers, 1);  // (N, L*H, d)
}

CodeSae train_code_sae(const at::Tensor& x64, const DsaeOptions& o) {
  at::NoGradGuard no_grad;
  at::Tensor x = x64.to(at::kFloat).contiguous();  // (M, d)
  const int64_t M = x.size(0), d = x.size(1), F = o.d_sae;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  CodeSae s;
  s.w_enc = at::randn({d, F}, gen, at::kFloat) / std::sqrt(static_cast<double>(d));
  s.b_enc = at::zeros({F}, at::kFloat);
  s.w_dec = s.w_enc.t().contiguous();
  s.w_dec.div_(s.w_dec.norm(2, {1}, true).clamp_min(1e-12));
  s.b_dec = x.mean(0);
  std::vector<at::Tensor*> p = {&s.w_enc, &s.b_enc, &s.w_dec, &s.b_dec};
  std::vector<at::Tensor> mo, ve;
  for (at::Tensor* t : p) mo.push_back(at::zeros_like(*t)), ve.push_back(at::zeros_like(*t));
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  for (int64_t step = 1; step <= o.epochs; ++step) {
    at::Tensor pre = at::addmm(s.b_enc, x, s.w_enc);  // (M, F)
    at::Tensor a = pre.clamp_min(0);
    at::Tensor xh = at::addmm(s.b_dec, a, s.w_dec);   // (M, d)
    // L = mean((xh - x)^2) + l1 * mean_rows(sum_f a)
    at::Tensor dxh = (xh - x) * (2.0 / static_cast<double>(M * d));
    at::Tensor da = dxh.mm(s.w_dec.t()) + (a > 0).to(at::kFloat) * (o.l1 / static_cast<double>(M));
    at::Tensor dpre = da * (pre > 0).to(at::kFloat);
    std::vector<at::Tensor> g = {x.t().mm(dpre), dpre.sum(0), a.t().mm(dxh), dxh.sum(0)};
    const double bc1 = 1 - std::pow(b1, static_cast<double>(step)), bc2 = 1 - std::pow(b2, static_cast<double>(step));
    for (size_t k = 0; k < p.size(); ++k) {
      mo[k].mul_(b1).add_(g[k], 1 - b1);
      ve[k].mul_(b2).addcmul_(g[k], g[k], 1 - b2);
      p[k]->addcdiv_(mo[k], (ve[k] / bc2).sqrt_().add_(eps), -o.lr / bc1);
    }
  }
  return s;
}

at::Tensor encode_codes(const CodeSae& s, const at::Tensor& x) {
  at::NoGradGuard no_grad;
  const int64_t d = s.w_enc.size(0), F = s.w_enc.size(1);
  at::Tensor flat = x.reshape({-1, d}).to(at::kDouble);
  at::Tensor a = at::addmm(s.b_enc.to(at::kDouble), flat, s.w_enc.to(at::kDouble)).clamp_min(0);
  auto mx = a.max(1);
  at::Tensor codes = at::where(std::get<0>(mx) > 0, std::get<1>(mx), at::full_like(std::get<1>(mx), F));
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end() - 1);
  return codes.reshape(shape);
}

CodeOverlap code_overlap(const at::Tensor& codes, const std::vector<bool>& positive) {
  at::Tensor c = codes.to(at::kLong).contiguous();
  const int64_t N = c.size(0), H = c.size(1);
  CodeOverlap out;
  const int64_t* v = c.data_ptr<int64_t>();
  for (int64_t h = 0; h < H; ++h) {
    std::set<int64_t> pos, neg;
    for (int64_t i = 0; i < N; ++i) (positive[static_cast<size_t>(i)] ? pos : neg).insert(v[i * H + h]);
    int64_t unique = 0;
    for (int64_t code : pos) unique += neg.count(code) == 0;
    std::set<int64_t> all = pos;
    all.insert(neg.begin(), neg.end());
    out.unique.push_back(unique);
    out.fraction.push_back(all.empty() ? 0.0 : static_cast<double>(unique) / static_cast<double>(all.size()));
  }
  return out;
}

std::vector<int64_t> rank_heads(const CodeOverlap& s) {
  std::vector<int64_t> order(s.unique.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (s.unique[a] != s.unique[b]) return s.unique[a] > s.unique[b];
    return s.fraction[a] > s.fraction[b];
  });
  return order;
}

void pick_examples(const Model& m, const TaskPairs& task, int64_t n_examples, std::vector<int64_t>* positives,
                   std::vector<int64_t>* negatives) {
  at::NoGradGuard no_grad;
  at::Tensor clean_logits = m.forward(task.clean), corrupted_logits = m.forward(task.corrupted);
  at::Tensor mc = task_metric_per_pair(task, clean_logits).to(at::kDouble);
  for (int64_t i = 0; i < task.n(); ++i) {
    const int64_t p = task.answer_pos[static_cast<size_t>(i)];
    bool clean_right = mc[i].item<double>() > 0, corrupted_right = false;
    if (task.metric == MetricKind::kLogitDiff) {
      const int64_t ans = task.answer[static_cast<size_t>(i)];
      clean_right = clean_right && clean_logits[i][p].argmax().item<int64_t>() == ans;
      corrupted_right = corrupted_logits[i][p].argmax().item<int64_t>() == ans;
    }
    if (clean_right && static_cast<int64_t>(positives->size()) < n_examples) positives->push_back(i);
    if (!corrupted_right && static_cast<int64_t>(negatives->size()) < n_examples) negatives->push_back(i);
  }
}

DsaeResult dsae_scores_on(const Model& m, const TaskPairs& task, const std::vector<int64_t>& positives,
                          const std::vector<int64_t>& negatives, const DsaeOptions& o) {
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  DsaeResult r;
  r.positives = positives;
  r.negatives = negatives;
  auto rows = [&](const at::Tensor& toks, const std::vector<int64_t>& idx) {
    std::vector<int64_t> pos;
    for (int64_t i : idx) pos.push_back(task.answer_pos[static_cast<size_t>(i)]);
    return head_output_vectors(m, toks.index_select(0, at::tensor(idx, at::kLong)), pos, o.mean_positions);
  };
  at::Tensor x = at::cat({rows(task.clean, positives), rows(task.corrupted, negatives)}, 0);  // (n, LH, d)
  auto t1 = Clock::now();
  const int64_t n = x.size(0), LH = x.size(1), d = x.size(2);
  // One codebook over rows x [M, d]: scaled by their RMS, trained, its codes [M] and its fit.
  auto codebook = [&](at::Tensor rows, const DsaeOptions& oo, at::Tensor* codes) {
    r.scale = std::sqrt(rows.pow(2).mean().item<double>());
    if (!(r.scale > 0)) r.scale = 1.0;
    rows = rows / r.scale;
    r.sae = train_code_sae(rows, oo);
    at::NoGradGuard no_grad;
    at::Tensor a = at::addmm(r.sae.b_enc, rows.to(at::kFloat), r.sae.w_enc).clamp_min(0);
    at::Tensor xh = at::addmm(r.sae.b_dec, a, r.sae.w_dec).to(at::kDouble);
    const double var = (rows - rows.mean(0)).pow(2).sum().item<double>();
    *codes = encode_codes(r.sae, rows);
    return var > 0 ? 1.0 - (xh - rows).pow(2).sum().item<double>() / var : 0.0;
  };
  if (o.per_head) {
    std::vector<at::Tensor> cols;
    double fve = 0;
    for (int64_t j = 0; j < LH; ++j) {
      DsaeOptions oo = o;
      oo.seed = o.seed + static_cast<uint64_t>(j);  // each head's codebook its own initialisation
      at::Tensor cj;
      fve += codebook(x.select(1, j).contiguous(), oo, &cj);
      cols.push_back(cj);
    }
    r.recon_fve = fve / static_cast<double>(LH);
    r.codes = at::stack(cols, 1);
  } else {
    at::Tensor codes;
    r.recon_fve = codebook(x.reshape({n * LH, d}), o, &codes);
    r.codes = codes.reshape({n, LH});
  }
  std::vector<bool> positive(static_cast<size_t>(n), false);
  for (size_t i = 0; i < positives.size(); ++i) positive[i] = true;
  r.overlap = code_overlap(r.codes, positive);
  r.ranking = rank_heads(r.overlap);
  auto t2 = Clock::now();
  r.seconds_forward = std::chrono::duration<double>(t1 - t0).count();
  r.seconds_train = std::chrono::duration<double>(t2 - t1).count();
  return r;
}

DsaeResult dsae_scores(const Model& m, const TaskPairs& task, const DsaeOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int64_t> pos, neg;
  pick_examples(m, task, o.n_examples, &pos, &neg);
  if (pos.size() < 2 || neg.size() < 2)
    throw InputError(task.name + ": the model predicts the answer on " + std::to_string(pos.size()) +
                     " clean prompts and fails on " + std::to_string(neg.size()) +
                     " corrupted ones; the discrete-SAE method needs at least 2 of each (more pairs: --n)");
  const double pick = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  DsaeResult r = dsae_scores_on(m, task, pos, neg, o);
  r.seconds_forward += pick;
  return r;
}

std::vector<int64_t> dsae_select(const DsaeResult& r, int64_t top_n, int64_t min_unique) {
  std::vector<int64_t> out;
  for (int64_t h : r.ranking) {
    if (top_n > 0 ? static_cast<int64_t>(out.size()) >= top_n : r.overlap.unique[h] < min_unique) break;
    out.push_back(h);
  }
  return out;
}

}  // namespace ms
