// Direct feature attribution by head for hook_z SAEs (core/features/sae_heads.h): the per-head
// parts plus the constant equal the SAE's own pre-activation and, for active features, its
// activation (every architecture and runtime normalisation); a feature whose encoder reads only one
// head's slice is attributed wholly to it; the corpus pass equals the per-position split summed;
// SAEs that are not on a whole hook_z are refused naming the file.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "core/features/sae_heads.h"
#include "core/features/sae_load.h"
#include "core/io/npy.h"
#include "hooks/activation_cache.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_models.h"

namespace ms {
namespace {

constexpr int64_t kHeads = 4, kDHead = 8, kDIn = kHeads * kDHead;  // tiny gpt2: 4 heads x d_head 8

std::shared_ptr<Sae> z_sae(int64_t d_sae, uint64_t seed, SaeArch arch, SaeRuntimeNorm norm, bool b_dec_in) {
  at::manual_seed(seed);
  auto s = std::make_shared<Sae>();
  s->cfg.arch = arch;
  s->cfg.d_in = s->cfg.d_out = kDIn;
  s->cfg.d_sae = d_sae;
  s->cfg.k = 6;
  s->cfg.hook_name = "blocks.1.attn.hook_z";
  s->cfg.reshape_hook_z = true;
  s->cfg.runtime_norm = norm;
  s->cfg.apply_b_dec_to_input = b_dec_in;
  s->cfg.source = "test-z-sae";
  s->w.W_enc = at::randn({kDIn, d_sae}) * 0.3;
  s->w.W_dec = at::randn({d_sae, kDIn}) * 0.3;
  s->w.b_enc = at::randn({d_sae}) * 0.1;
  s->w.b_dec = at::randn({kDIn}) * 0.3;
  if (arch == SaeArch::kJumpRelu) s->w.threshold = at::rand({d_sae}) * 0.3;
  if (arch == SaeArch::kGated) {
    s->w.b_enc = at::Tensor();
    s->w.b_gate = at::randn({d_sae}) * 0.1;
    s->w.r_mag = at::randn({d_sae}) * 0.2;
    s->w.b_mag = at::randn({d_sae}) * 0.1;
  }
  return s;
}

}  // namespace

// The identity acts_pre = sum_h part_h + bias in float64 (1e-12 of the terms' scale), and against
// the SAE's own float32 pass: |sum - act| <= 1e-5 x the largest of |act| and the terms' absolute
// sum (float32 GEMM rounding grows with the terms, not with their possibly cancelling sum); the
// largest error relative to the activation alone is printed.
TEST(SaeHeads, PartsSumToTheActivation) {
  c10::InferenceMode guard;
  const std::vector<SaeArch> archs = {SaeArch::kStandard, SaeArch::kJumpRelu, SaeArch::kTopK, SaeArch::kGated};
  const std::vector<SaeRuntimeNorm> norms = {SaeRuntimeNorm::kNone, SaeRuntimeNorm::kConstantNormRescale,
                                             SaeRuntimeNorm::kLayerNorm};
  uint64_t seed = 10;
  for (SaeArch arch : archs)
    for (SaeRuntimeNorm norm : norms)
      for (bool b_dec_in : {true, false}) {
        auto sae = z_sae(48, ++seed, arch, norm, b_dec_in);
        at::Tensor x = at::randn({64, kDIn}) * 1.5 + 0.2;
        HeadSplit s = split_by_head(*sae, x, kHeads);
        ASSERT_EQ(s.per_head.sizes(), (std::vector<int64_t>{64, 48, kHeads}));
        at::Tensor terms = s.per_head.abs().sum(-1) + s.bias.abs();
        const double id_err = (s.per_head.sum(-1) + s.bias - s.acts_pre).abs().max().item<double>();
        EXPECT_LE(id_err, 1e-12 * terms.max().item<double>());
        SaePass p = sae->run(x);
        at::Tensor pre32 = p.acts_pre.to(at::kDouble), act = p.acts_post.to(at::kDouble);
        at::Tensor scale = at::maximum(pre32.abs(), terms);
        EXPECT_LE(((s.acts_pre - pre32).abs() / scale).max().item<double>(), 1e-5) << sae_arch_name(arch);
        at::Tensor on = act > 0;
        ASSERT_GT(on.sum().item<int64_t>(), 10);
        at::Tensor err = (s.acts_pre - act).abs();
        EXPECT_LE((err / scale).masked_select(on).max().item<double>(), 1e-5) << sae_arch_name(arch);
        std::printf("%-8s norm %d b_dec_in %d: %lld active, max |parts + bias - act| / act %.2e\n", sae_arch_name(arch),
                    static_cast<int>(norm), b_dec_in ? 1 : 0, static_cast<long long>(on.sum().item<int64_t>()),
                    (err / act.clamp_min(1e-30)).masked_select(on).max().item<double>());
      }
}

// Feature f reads only head f % 4's slice of the encoder: every part of another head is exactly 0
// and the corpus pass attributes all of its head attribution, and so dominance, to that head.
TEST(SaeHeads, OneSliceFeaturesBelongToTheirHead) {
  c10::InferenceMode guard;
  auto m = test::tiny_model("gpt2");
  ASSERT_EQ(m->config().n_heads, kHeads);
  ASSERT_EQ(m->config().d_head, kDHead);
  auto sae = z_sae(16, 3, SaeArch::kStandard, SaeRuntimeNorm::kNone, true);
  sae->w.b_enc = at::full({16}, 0.05f);  // most features fire somewhere
  for (int64_t f = 0; f < 16; ++f) {
    at::Tensor col = sae->w.W_enc.select(1, f);
    for (int64_t h = 0; h < kHeads; ++h)
      if (h != f % kHeads) col.narrow(0, h * kDHead, kDHead).zero_();
  }
  at::Tensor x = at::randn({20, kDIn});
  HeadSplit s = split_by_head(*sae, x, kHeads);
  for (int64_t f = 0; f < 16; ++f)
    for (int64_t h = 0; h < kHeads; ++h)
      if (h != f % kHeads) EXPECT_EQ(s.per_head.select(1, f).select(1, h).abs().max().item<double>(), 0.0);

  std::vector<std::vector<int32_t>> prompts = {{1, 5, 9, 2, 7, 3, 8}, {4, 4, 6, 1, 2}, {9, 8, 7, 6, 5, 4, 3, 2}};
  SaeHeadsOptions o;
  SaeHeadsResult r = sae_heads(*m, *sae, prompts, o);
  EXPECT_EQ(r.layer, 1);
  EXPECT_EQ(r.n_tokens, 20);  // tiny models have no BOS: nothing left out
  ASSERT_GT(r.n_live, 4);
  EXPECT_LE(r.max_sum_error, 1e-5);
  for (int64_t f = 0; f < 16; ++f) {
    if (r.dominant_head[f].item<int64_t>() < 0) continue;
    EXPECT_EQ(r.dominant_head[f].item<int64_t>(), f % kHeads) << "feature " << f;
    EXPECT_DOUBLE_EQ(r.dominant_share[f].item<double>(), 1.0);
    EXPECT_NEAR(r.decoder_fraction.sum(1)[f].item<double>(), 1.0, 1e-12);
    // head fractions + bias fraction = 1
    EXPECT_NEAR(r.head_fraction[f].sum().item<double>() + r.bias_fraction[f].item<double>(), 1.0, 1e-5);
  }
  EXPECT_EQ(r.dominated.sum().item<int64_t>(), r.n_dominated);
}

// The corpus pass equals the per-position split summed over firing positions (one prompt per
// forward vs all positions at once), to 1e-9 of the attribution's scale (float64 sums in another
// order).
TEST(SaeHeads, CorpusPassEqualsSplitSummed) {
  c10::InferenceMode guard;
  auto m = test::tiny_model("gpt2");
  auto sae = z_sae(24, 5, SaeArch::kTopK, SaeRuntimeNorm::kLayerNorm, true);
  std::vector<std::vector<int32_t>> prompts = {{1, 5, 9, 2, 7, 3, 8}, {4, 4, 6, 1, 2}};
  SaeHeadsResult r = sae_heads(*m, *sae, prompts, SaeHeadsOptions{});
  at::Tensor attr = at::zeros({24, kHeads}, at::kDouble), fires = at::zeros({24}, at::kLong);
  for (const auto& p : prompts) {
    HookRegistry reg;
    ActivationCache cache;
    reg.add_forward("blocks.1.attn.hook_z", cache_hook(cache));
    ForwardOptions fo;
    fo.hooks = &reg;
    m->forward(m->tokens_tensor(p), fo);
    at::Tensor x = sae->to_input(cache.at("blocks.1.attn.hook_z")).reshape({-1, kDIn});
    HeadSplit s = split_by_head(*sae, x, kHeads);
    at::Tensor on = (s.acts > 0).to(at::kDouble);
    attr += (s.per_head * on.unsqueeze(-1)).sum(0);
    fires += (s.acts > 0).sum(0);
  }
  EXPECT_TRUE(at::equal(fires, r.n_firing));
  EXPECT_LE((attr - r.head_attribution).abs().max().item<double>(), 1e-9 * attr.abs().max().item<double>());
}

// Against the float64 reference (scripts/reference/make_sae_heads_fixtures.py): the SAE fixtures'
// 16 inputs read as 4 heads of 4, every architecture and normalisation; parts and constant to 1e-5
// of the terms' scale (both from the same float32 weights; mechscope folds expected_average_only_in
// into float32 weights, which rounds).
TEST(SaeHeads, MatchesTheFloat64Reference) {
  const std::string sae_dir = test::fixtures_dir() + "/sae/", ref_dir = test::fixtures_dir() + "/sae_heads/";
  int n_cases = 0;
  for (const char* name : {"hook_z", "standard", "standard_no_bdec", "standard_constant_norm", "standard_layer_norm",
                           "standard_expected_average", "gated", "jumprelu", "topk"}) {
    auto sae = load_sae(sae_dir + name).value();
    at::Tensor x = read_npy(sae_dir + name + "/x.npy").value().reshape({-1, 16});
    at::Tensor ref = read_npy(ref_dir + name + "/per_head.npy").value();
    at::Tensor ref_bias = read_npy(ref_dir + name + "/bias.npy").value();
    HeadSplit s = split_by_head(*sae, x, 4);
    const double scale = ref.abs().max().item<double>() + ref_bias.abs().max().item<double>();
    const double d_parts = (s.per_head - ref).abs().max().item<double>() / scale;
    const double d_bias = (s.bias - ref_bias).abs().max().item<double>() / scale;
    std::printf("%-26s parts %.2e, constant %.2e (of the terms' scale %.3g)\n", name, d_parts, d_bias, scale);
    EXPECT_LE(d_parts, 1e-5) << name;
    EXPECT_LE(d_bias, 1e-5) << name;
    ++n_cases;
  }
  EXPECT_EQ(n_cases, 9);
}

TEST(SaeHeads, RefusesSaesNotOnAWholeHookZ) {
  auto sae = z_sae(8, 1, SaeArch::kStandard, SaeRuntimeNorm::kNone, true);
  EXPECT_TRUE(check_head_sae(*sae, kHeads, kDHead).ok());
  auto resid = z_sae(8, 1, SaeArch::kStandard, SaeRuntimeNorm::kNone, true);
  resid->cfg.hook_name = "blocks.1.hook_resid_pre";
  resid->cfg.reshape_hook_z = false;
  Status e = check_head_sae(*resid, kHeads, kDHead);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ErrorCode::kBadInput);
  EXPECT_NE(e.error().message.find("test-z-sae"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("hook_z"), std::string::npos);
  auto one = z_sae(8, 1, SaeArch::kStandard, SaeRuntimeNorm::kNone, true);
  one->cfg.hook_head_index = 2;
  EXPECT_FALSE(check_head_sae(*one, kHeads, kDHead).ok());
  auto tc = z_sae(8, 1, SaeArch::kTranscoder, SaeRuntimeNorm::kNone, true);
  EXPECT_FALSE(check_head_sae(*tc, kHeads, kDHead).ok());
  EXPECT_FALSE(check_head_sae(*sae, 2, kDHead).ok());  // d_in != n_heads x d_head
}

}  // namespace ms
