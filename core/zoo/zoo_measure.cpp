// Mechanism measurements for the trained zoo: induction scores and losses on repeated random
// tokens, retrieval-head scores from top-1 attention on needle episodes, and head ablations.
#include "core/zoo/zoo_measure.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>

#include "core/analysis/heads/head_ablation.h"
#include "core/analysis/heads/head_detectors.h"
#include "hooks/activation_cache.h"

namespace ms {
namespace {

int64_t probe_start(const at::Tensor& probe, int64_t half) {
  if (probe.dim() != 2) fail_usage("probe tokens must be [batch, pos]");
  const int64_t start = probe.size(1) - 2 * half;
  if (half < 2 || (start != 0 && start != 1)) fail_usage("probe is not [BOS?, half tokens, the same again]");
  return start;
}

// Logits of the episodes with the given heads' hook_z zeroed; optionally the top-1 key of every
// head at every query, [n_layers][B, H, T].
at::Tensor run_episodes(const Model& model, const at::Tensor& tokens, const std::vector<HeadRef>& ablated,
                        std::vector<at::Tensor>* top_key) {
  at::NoGradGuard no_grad;
  HookRegistry hooks;
  add_head_ablation(hooks, model.config(), ablated);
  if (top_key) {
    top_key->assign(static_cast<size_t>(model.config().n_layers), at::Tensor());
    hooks.add_forward("blocks.*.attn.hook_pattern", [top_key](const at::Tensor& a, const HookContext& ctx) {
      (*top_key)[static_cast<size_t>(ctx.layer)] = a.argmax(-1).to(at::kCPU);  // (B, H, T)
      return at::Tensor();
    });
  }
  ForwardOptions fo;
  fo.hooks = &hooks;
  return model.forward(tokens, fo).to(at::kCPU);
}

double accuracy_of(const at::Tensor& predicted, const std::vector<Episode>& eps) {
  auto pred = predicted.accessor<int64_t, 2>();
  int64_t hit = 0, n = 0;
  for (size_t b = 0; b < eps.size(); ++b)
    for (int64_t p : eps[b].answer_pos) {
      ++n;
      hit += pred[static_cast<int64_t>(b)][p - 1] == eps[b].tokens[static_cast<size_t>(p)];
    }
  return n ? static_cast<double>(hit) / static_cast<double>(n) : 0.0;
}

}  // namespace

std::vector<HeadRef> top_heads(const at::Tensor& scores, double threshold, int64_t max_heads) {
  std::vector<std::pair<double, HeadRef>> all;
  at::Tensor s = scores.to(at::kDouble).contiguous();
  for (int64_t l = 0; l < s.size(0); ++l)
    for (int64_t h = 0; h < s.size(1); ++h) {
      const double v = s[l][h].item<double>();
      if (v >= threshold) all.push_back({v, HeadRef{l, h}});
    }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<HeadRef> out;
  for (const auto& [v, h] : all) {
    if (max_heads > 0 && static_cast<int64_t>(out.size()) >= max_heads) break;
    out.push_back(h);
  }
  return out;
}

Result<at::Tensor> induction_scores(const Model& model, const at::Tensor& probe, int64_t half) {
  return guard([&] {
    const int64_t start = probe_start(probe, half), T = probe.size(1);
    return score_layers(model, probe, [&](int64_t, const at::Tensor& a) {
      // Diagonal at offset -(half - 1): element i is A[half - 1 + i, i]; the second copy's queries
      // start at start + half, so skip the first `start + 1` of them.
      at::Tensor diag = a.to(at::kDouble).diagonal(-(half - 1), 2, 3);  // (B, H, T - half + 1)
      return diag.narrow(2, start + 1, T - half + 1 - (start + 1)).mean(at::IntArrayRef{0, 2});
    });
  });
}

Result<RepeatLoss> repeat_loss(const Model& model, const at::Tensor& probe, int64_t half) {
  return guard([&] {
    const int64_t start = probe_start(probe, half);
    at::NoGradGuard no_grad;
    at::Tensor logp = at::log_softmax(model.forward(probe).to(at::kCPU, at::kDouble), -1);
    at::Tensor nll = -logp.narrow(1, 0, probe.size(1) - 1)
                          .gather(2, probe.narrow(1, 1, probe.size(1) - 1).to(at::kCPU).unsqueeze(2))
                          .squeeze(2);  // (B, T - 1): loss of predicting token t + 1
    RepeatLoss r;
    // First copy: tokens start + 1 .. start + half - 1; second copy from its 2nd token.
    r.first = nll.narrow(1, start, half - 1).mean().item<double>();
    r.repeated = nll.narrow(1, start + half, half - 1).mean().item<double>();
    return r;
  });
}

Result<RetrievalFigures> retrieval_scores(const Model& model, const std::vector<Episode>& episodes,
                                          int32_t pad) {
  return guard([&] {
    if (episodes.empty()) fail_usage("no episodes");
    std::vector<at::Tensor> top;
    at::Tensor logits = run_episodes(model, episode_tokens(episodes, pad), {}, &top);
    at::Tensor pred = logits.argmax(-1);
    auto p = pred.accessor<int64_t, 2>();
    const ModelConfig& c = model.config();
    at::Tensor hits = at::zeros({c.n_layers, c.n_heads}, at::kDouble);
    int64_t n = 0, correct = 0;
    for (size_t b = 0; b < episodes.size(); ++b) {
      const Episode& e = episodes[b];
      for (size_t i = 0; i < e.answer_pos.size(); ++i) {
        ++n;
        const int64_t q = e.answer_pos[i] - 1;
        if (p[static_cast<int64_t>(b)][q] != e.tokens[static_cast<size_t>(e.answer_pos[i])]) continue;
        ++correct;
        for (int64_t l = 0; l < c.n_layers; ++l) {
          auto k = top[static_cast<size_t>(l)].accessor<int64_t, 3>();
          for (int64_t h = 0; h < c.n_heads; ++h)
            if (k[static_cast<int64_t>(b)][h][q] == e.source_pos[i]) hits[l][h] += 1.0;
        }
      }
    }
    RetrievalFigures r;
    r.answer_tokens = n;
    r.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
    r.scores = n ? hits / static_cast<double>(n) : hits;
    return r;
  });
}

Result<double> answer_accuracy(const Model& model, const std::vector<Episode>& episodes, int32_t pad,
                               const std::vector<HeadRef>& ablated) {
  return guard([&] {
    if (episodes.empty()) fail_usage("no episodes");
    return accuracy_of(run_episodes(model, episode_tokens(episodes, pad), ablated, nullptr).argmax(-1), episodes);
  });
}

Result<AblationFigures> ablation_test(const Model& model, const std::vector<Episode>& episodes,
                                      int32_t pad, const std::vector<HeadRef>& heads, int64_t n_random,
                                      uint64_t seed) {
  return guard([&] {
    if (episodes.empty()) fail_usage("no episodes");
    const at::Tensor tokens = episode_tokens(episodes, pad);
    auto acc = [&](const std::vector<HeadRef>& ablated) {
      return accuracy_of(run_episodes(model, tokens, ablated, nullptr).argmax(-1), episodes);
    };
    AblationFigures f;
    f.heads = heads;
    f.baseline = acc({});
    f.retrieval_ablated = acc(heads);
    std::vector<HeadRef> others;
    for (int64_t l = 0; l < model.config().n_layers; ++l)
      for (int64_t h = 0; h < model.config().n_heads; ++h)
        if (std::find(heads.begin(), heads.end(), HeadRef{l, h}) == heads.end()) others.push_back({l, h});
    TaskRng rng(seed);
    const size_t k = std::min(heads.size(), others.size());
    for (int64_t r = 0; r < n_random && k > 0; ++r) {
      std::vector<HeadRef> pool = others, set;
      for (size_t i = 0; i < k; ++i) {
        const size_t j = i + static_cast<size_t>(rng.below(pool.size() - i));
        std::swap(pool[i], pool[j]);
        set.push_back(pool[i]);
      }
      f.random_sets.push_back(set);
      f.random_ablated.push_back(acc(set));
    }
    double sum = 0;
    for (double a : f.random_ablated) sum += a;
    f.random_ablated_mean = f.random_ablated.empty() ? f.baseline : sum / static_cast<double>(f.random_ablated.size());
    return f;
  });
}

}  // namespace ms
