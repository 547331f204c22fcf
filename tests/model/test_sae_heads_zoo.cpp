// Attention-output SAEs on the trained `induction` zoo model (issue 16): hook_z SAEs trained on its
// two layers; the features that fire on the second copy of a repeated sequence (induction features,
// defined by the data) are attributed to the induction heads the detectors find (this model has
// three in layer 1, scores 0.68-0.76, and one that is not, 0.14), and the layer-0
// features that follow the previous token (defined by the data: the previous token explains their
// activation better than the current one) to the previous-token head. Per-head attribution sums to
// each feature's activation (1e-5). MECHSCOPE_TEST_SEED picks the SAEs' seed (default 1).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>

#include "core/analysis/heads/head_detectors.h"
#include "core/features/activation_store.h"
#include "core/features/sae_heads.h"
#include "core/features/sae_train.h"
#include "core/tokenizer/tokenizer.h"
#include "core/zoo/zoo_tasks.h"
#include "core/zoo/zoo_text.h"
#include "core/zoo/zoo_trained.h"
#include "hooks/activation_cache.h"
#include "tests/support/test_support.h"
#include "tests/support/zoo_fixture.h"

namespace ms {
namespace {

constexpr int64_t kHalf = 20;  // BOS + 20 random tokens + the same 20: 41 <= n_ctx 48

uint64_t sae_seed() {
  const char* s = std::getenv("MECHSCOPE_TEST_SEED");
  return s && *s ? std::strtoull(s, nullptr, 10) : 1;
}

// The SAE seeds checked: MECHSCOPE_SAE_HEADS_SEEDS="1,2,3" (the spread across seeds), else sae_seed().
std::vector<uint64_t> sae_seeds() {
  std::vector<uint64_t> out;
  const char* s = std::getenv("MECHSCOPE_SAE_HEADS_SEEDS");
  for (const char* p = s; p && *p;) {
    char* end = nullptr;
    out.push_back(std::strtoull(p, &end, 10));
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) break;
  }
  if (out.empty()) out.push_back(sae_seed());
  return out;
}

struct Zoo {
  std::unique_ptr<Model> model;
  int prev_head = -1, ind_head = -1;
  std::vector<int64_t> ind_heads;  // layer-1 heads scoring at least half the best induction score
};

const Zoo& zoo() {
  static Zoo z = [] {
    at::set_num_threads(1);
    Zoo z;
    z.model = Model::load(test::induction_zoo_dir()).value();  // CI size, as the zoo's own test
    TaskRng rng(99);
    at::Tensor probe = repeated_random_tokens(32, 16, 1, 127, kAsciiBos, rng);
    at::Tensor prev = detect_heads(*z.model, probe, HeadPattern::kPreviousToken).value();
    at::Tensor ind = detect_heads(*z.model, probe, HeadPattern::kInduction, {true, false, ErrorMeasure::kMul}).value();
    z.prev_head = static_cast<int>(prev[0].argmax().item<int64_t>());
    z.ind_head = static_cast<int>(ind[1].argmax().item<int64_t>());
    std::printf("detectors: previous-token 0.%d (%.3f), induction 1.%d (%.3f); layer-1 induction scores", z.prev_head,
                prev[0][z.prev_head].item<double>(), z.ind_head, ind[1][z.ind_head].item<double>());
    for (int64_t h = 0; h < ind.size(1); ++h) {
      std::printf(" %.3f", ind[1][h].item<double>());
      if (ind[1][h].item<double>() >= 0.5 * ind[1][z.ind_head].item<double>()) z.ind_heads.push_back(h);
    }
    std::printf("\n");
    return z;
  }();
  return z;
}

std::vector<std::vector<int32_t>> sequences(int64_t n, uint64_t seed) {
  TaskRng rng(seed);
  at::Tensor t = repeated_random_tokens(n, kHalf, 1, 127, kAsciiBos, rng).to(at::kLong).contiguous();
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int32_t> row;
    for (int64_t p = 0; p < t.size(1); ++p) row.push_back(static_cast<int32_t>(t[i][p].item<int64_t>()));
    out.push_back(std::move(row));
  }
  return out;
}

std::shared_ptr<Sae> train_z_sae(const Model& m, int layer, uint64_t seed) {
  ActivationStoreOptions so;
  so.hook_name = "blocks." + std::to_string(layer) + ".attn.hook_z";
  so.context_size = 48;
  auto store = ActivationStore::collect(m, sequences(320, 1000 + layer), so).value();
  SaeTrainOptions o;
  o.arch = SaeArch::kStandard;
  o.d_sae = 32;
  o.steps = 400;
  o.batch_size = 512;
  o.lr = 3e-3;
  o.lr_decay_steps = 100;
  o.l1_coefficient = 2.0;
  o.seed = seed;
  o.hook_name = so.hook_name;
  SaeTrainResult r = train_sae(*store, o).value();
  r.sae->cfg.reshape_hook_z = true;  // as load_sae reads the written folder (the hook ends in hook_z)
  const SaeTrainPoint& last = r.curve.back();
  std::printf("layer %d SAE (seed %llu): EV %.3f, L0 %.2f, dead %lld\n", layer, static_cast<unsigned long long>(seed),
              last.explained_variance, last.l0, static_cast<long long>(last.dead_features));
  EXPECT_GT(last.explained_variance, 0.7);
  return r.sae;
}

// Each sequence's SAE input x [T, d_in] at the SAE's hook.
at::Tensor hook_input(const Model& m, const Sae& sae, const std::vector<int32_t>& ids) {
  HookRegistry reg;
  ActivationCache cache;
  reg.add_forward(sae.cfg.hook_name, cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &reg;
  m.forward(m.tokens_tensor(ids), fo);
  return sae.to_input(cache.at(sae.cfg.hook_name)).reshape({-1, sae.cfg.d_in});
}

// Correlation ratio eta^2 of each feature's activation [N, F] with a grouping g [N] of 128 values:
// the share of its variance the group means explain.
at::Tensor eta2(const at::Tensor& acts, const at::Tensor& g) {
  const int64_t F = acts.size(1);
  at::Tensor sums = at::zeros({128, F}, at::kDouble).index_add_(0, g, acts);
  at::Tensor counts = at::zeros({128}, at::kDouble).index_add_(0, g, at::ones({g.size(0)}, at::kDouble));
  at::Tensor means = sums / counts.clamp_min(1).unsqueeze(1);
  at::Tensor mu = acts.mean(0);
  at::Tensor between = (counts.unsqueeze(1) * (means - mu).pow(2)).sum(0);
  at::Tensor total = (acts - mu).pow(2).sum(0);
  return between / total.clamp_min(1e-30);
}

}  // namespace

void check_induction_layer(const Zoo& z, std::shared_ptr<Sae> sae);
void check_previous_layer(const Zoo& z, std::shared_ptr<Sae> sae);

TEST(SaeHeadsZoo, InductionFeaturesBelongToTheInductionHead) {
  const Zoo& z = zoo();  // training needs autograd: before the inference guard
  const Model& m = *z.model;
  for (uint64_t seed : sae_seeds()) check_induction_layer(z, train_z_sae(m, 1, seed));
}

void check_induction_layer(const Zoo& z, std::shared_ptr<Sae> sae) {
  const Model& m = *z.model;
  c10::InferenceMode guard;
  auto eval = sequences(96, 4242);
  // Per feature: mean activation over the first copy (positions 1..half) and the second.
  at::Tensor first = at::zeros({sae->cfg.d_sae}, at::kDouble), second = first.clone();
  // The parts + constant (float64) against the SAE's own float32 activation: relative to the larger
  // of the activation and the terms' absolute sum (float32 rounding grows with the terms), and,
  // printed, relative to the activation alone where it is at least 1% of the feature's largest.
  double max_rel = 0, max_rel_act = 0;
  std::vector<at::Tensor> pre_all, act_all, terms_all;
  for (const auto& ids : eval) {
    at::Tensor x = hook_input(m, *sae, ids);
    HeadSplit s = split_by_head(*sae, x, m.config().n_heads);
    at::Tensor act = s.acts.to(at::kDouble);
    pre_all.push_back(s.acts_pre), act_all.push_back(act), terms_all.push_back(s.per_head.abs().sum(-1) + s.bias.abs());
    first += act.narrow(0, 1, kHalf).mean(0);
    second += act.narrow(0, 1 + kHalf, kHalf).mean(0);
  }
  {
    at::Tensor pre = at::cat(pre_all), act = at::cat(act_all), terms = at::cat(terms_all);
    at::Tensor on = act > 0, err = (pre - act).abs();
    max_rel = (err / at::maximum(act, terms)).masked_select(on).max().item<double>();
    at::Tensor big = act >= 0.01 * std::get<0>(act.max(0)).unsqueeze(0);
    max_rel_act = (err / act.clamp_min(1e-30)).masked_select(on & big).max().item<double>();
  }
  std::printf("|head parts + constant - activation|: max %.2e of the terms' scale, %.2e of the activation (>= 1%% of "
              "the feature's max)\n", max_rel, max_rel_act);
  EXPECT_LE(max_rel, 1e-5);

  SaeHeadsResult r = sae_heads(m, *sae, eval, SaeHeadsOptions{});
  EXPECT_LE(r.max_sum_error, 1e-5);
  // Induction features: live, and at least 4x as active on the second copy as on the first.
  double ind_attr = 0, ind_act = 0;
  int n_ind = 0, n_ind_dominated = 0;
  for (int64_t f = 0; f < r.d_sae; ++f) {
    const double a1 = first[f].item<double>(), a2 = second[f].item<double>();
    if (r.dominant_head[f].item<int64_t>() < 0) continue;
    const bool induction = a2 > 4 * a1 && a2 > 0;
    std::printf("feature %2lld: mean act first %.3f second %.3f%s; head fractions", static_cast<long long>(f), a1 / eval.size(),
                a2 / eval.size(), induction ? " (induction)" : "");
    for (int64_t h = 0; h < r.n_heads; ++h) std::printf(" %.2f", r.head_fraction[f][h].item<double>());
    std::printf(", bias %.2f\n", r.bias_fraction[f].item<double>());
    if (!induction) continue;
    ++n_ind;
    const int64_t dom = r.dominant_head[f].item<int64_t>();
    n_ind_dominated += std::find(z.ind_heads.begin(), z.ind_heads.end(), dom) != z.ind_heads.end();
    at::Tensor pos = r.head_attribution[f].clamp_min(0);
    for (int64_t h : z.ind_heads) ind_attr += pos[h].item<double>();
    ind_act += pos.sum().item<double>();
  }
  const double share = ind_act > 0 ? ind_attr / ind_act : 0;
  std::printf("%d induction features; the induction heads (%zu of layer 1) dominate %d; their share of the positive "
              "head attribution %.3f\n", n_ind, z.ind_heads.size(), n_ind_dominated, share);
  ASSERT_GE(n_ind, 2);
  // Measured over SAE seeds 1-3: dominated 12/14, 12/15, 18/20; share 0.764, 0.767, 0.841.
  EXPECT_GE(3 * n_ind_dominated, 2 * n_ind);
  EXPECT_GE(share, 0.6);
}

TEST(SaeHeadsZoo, PreviousTokenFeaturesBelongToThePreviousTokenHead) {
  const Zoo& z = zoo();  // training needs autograd: before the inference guard
  const Model& m = *z.model;
  for (uint64_t seed : sae_seeds()) check_previous_layer(z, train_z_sae(m, 0, seed));
}

void check_previous_layer(const Zoo& z, std::shared_ptr<Sae> sae) {
  const Model& m = *z.model;
  c10::InferenceMode guard;
  auto eval = sequences(96, 4343);
  std::vector<at::Tensor> acts;
  std::vector<int64_t> cur, prev;
  for (const auto& ids : eval) {
    at::Tensor x = hook_input(m, *sae, ids);
    acts.push_back(sae->encode(x).narrow(0, 1, x.size(0) - 1).to(at::kDouble));
    for (size_t p = 1; p < ids.size(); ++p) cur.push_back(ids[p]), prev.push_back(ids[p - 1]);
  }
  at::Tensor a = at::cat(acts);
  at::Tensor e_prev = eta2(a, at::tensor(prev, at::kLong)), e_cur = eta2(a, at::tensor(cur, at::kLong));
  SaeHeadsResult r = sae_heads(m, *sae, eval, SaeHeadsOptions{});
  EXPECT_LE(r.max_sum_error, 1e-5);
  double prev_attr = 0, pos_attr = 0;
  int n_prev = 0, n_prev_dominated = 0;
  for (int64_t f = 0; f < r.d_sae; ++f) {
    if (r.dominant_head[f].item<int64_t>() < 0) continue;
    const double ep = e_prev[f].item<double>(), ec = e_cur[f].item<double>();
    const bool prev_feature = ep > 0.5 && ep > 2 * ec;
    std::printf("feature %2lld: eta2 previous token %.3f current %.3f%s; head fractions", static_cast<long long>(f), ep, ec,
                prev_feature ? " (previous-token)" : "");
    for (int64_t h = 0; h < r.n_heads; ++h) std::printf(" %.2f", r.head_fraction[f][h].item<double>());
    std::printf(", bias %.2f\n", r.bias_fraction[f].item<double>());
    if (!prev_feature) continue;
    ++n_prev;
    n_prev_dominated += r.dominant_head[f].item<int64_t>() == z.prev_head;
    prev_attr += r.head_attribution[f][z.prev_head].item<double>();
    pos_attr += r.head_attribution[f].clamp_min(0).sum().item<double>();
  }
  const double share = pos_attr > 0 ? prev_attr / pos_attr : 0;
  std::printf("%d previous-token features; head 0.%d dominates %d; its share of their positive head attribution %.3f\n",
              n_prev, z.prev_head, n_prev_dominated, share);
  ASSERT_GE(n_prev, 2);
  // Measured over SAE seeds 1-3: dominated 14/15, 21/22, 17/18; share 0.647, 0.670, 0.660.
  EXPECT_GE(n_prev_dominated, (3 * n_prev + 3) / 4);
  EXPECT_GE(share, 0.6);
}

// Run by hand (--gtest_also_run_disabled_tests): the polysemanticity estimate on the default model.
// A hook_z SAE (standard, 256 features, 600 steps) per layer on 288 paragraphs of its corpus, then
// `sae heads` over 64 held-out paragraphs: the features each head dominates (share >= 0.5).
TEST(SaeHeadsZoo, DISABLED_DefaultModelPolysemanticity) {
  at::set_num_threads(1);
  auto m = Model::load(test::source_dir() + "/resources/models/default").value();
  auto paragraphs = [&](int n, uint64_t seed) {
    TextGenerator gen(seed);
    std::vector<std::vector<int32_t>> out;
    for (int i = 0; i < n; ++i) {
      std::vector<int32_t> ids = m->tokenizer()->encode(gen.paragraph(6), true);
      if (static_cast<int64_t>(ids.size()) > m->config().n_ctx) ids.resize(static_cast<size_t>(m->config().n_ctx));
      out.push_back(std::move(ids));
    }
    return out;
  };
  const auto train = paragraphs(288, 1), held_out = paragraphs(64, 2);
  int64_t polysemantic = 0, heads = 0, dominated = 0, live = 0;
  for (int layer = 0; layer < m->config().n_layers; ++layer) {
    ActivationStoreOptions so;
    so.hook_name = "blocks." + std::to_string(layer) + ".attn.hook_z";
    auto store = ActivationStore::collect(*m, train, so).value();
    SaeTrainOptions o;
    o.d_sae = 256;
    o.steps = 600;
    o.batch_size = 512;
    o.lr = 2e-3;
    o.lr_decay_steps = 150;
    o.l1_coefficient = 1.0;
    o.seed = sae_seed();
    o.hook_name = so.hook_name;
    SaeTrainResult t = train_sae(*store, o).value();
    t.sae->cfg.reshape_hook_z = true;  // as load_sae reads the written folder
    c10::InferenceMode guard;
    SaeHeadsResult r = sae_heads(*m, *t.sae, held_out, SaeHeadsOptions{});
    std::printf("layer %d: EV %.3f L0 %.1f; %lld live, %lld dominated; per head dominated / activation share:", layer,
                t.curve.back().explained_variance, t.curve.back().l0, static_cast<long long>(r.n_live),
                static_cast<long long>(r.n_dominated));
    for (int64_t h = 0; h < r.n_heads; ++h)
      std::printf(" %lld/%.2f", static_cast<long long>(r.dominated[h].item<int64_t>()), r.activation_share[h].item<double>());
    std::printf("; max sum error %.1e\n", r.max_sum_error);
    EXPECT_LE(r.max_sum_error, 1e-5);
    polysemantic += r.n_polysemantic, heads += r.n_heads, dominated += r.n_dominated, live += r.n_live;
  }
  std::printf("%lld of %lld heads dominate >= 2 features (%.0f%%); %lld of %lld live features have a dominant head\n",
              static_cast<long long>(polysemantic), static_cast<long long>(heads), 100.0 * polysemantic / heads,
              static_cast<long long>(dominated), static_cast<long long>(live));
}

}  // namespace ms
