// Hook semantics on tiny random models of every family: names, globs, caching, patching with a
// run's own cache, head ablation locality, KV-cache equivalence, backward hooks, scopes.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "hooks/activation_cache.h"
#include "hooks/hook_names.h"
#include "tests/support/numerics.h"
#include "tests/support/tiny_models.h"

namespace ms {
namespace {

const char* kFamilies[] = {"gpt2", "neox", "llama", "mistral", "attn_only"};

at::Tensor tokens(int64_t batch, int64_t len, uint64_t seed = 7) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return at::randint(0, 50, {batch, len}, g, at::kLong);
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

TEST(HookNames, GetActName) {
  EXPECT_EQ(get_act_name("pattern", 3), "blocks.3.attn.hook_pattern");
  EXPECT_EQ(get_act_name("resid_pre", 0), "blocks.0.hook_resid_pre");
  EXPECT_EQ(get_act_name("q", 1), "blocks.1.attn.hook_q");
  EXPECT_EQ(get_act_name("pre", 2), "blocks.2.mlp.hook_pre");
  EXPECT_EQ(get_act_name("normalized", 2, "ln2"), "blocks.2.ln2.hook_normalized");
  EXPECT_EQ(get_act_name("scale", -1, "ln_final"), "ln_final.hook_scale");
  EXPECT_EQ(get_act_name("embed"), "hook_embed");
  EXPECT_EQ(get_act_name("attn_out", 4), "blocks.4.hook_attn_out");
  EXPECT_EQ(get_act_name("blocks.1.attn.hook_z"), "blocks.1.attn.hook_z");
}

TEST(HookNames, Glob) {
  EXPECT_TRUE(glob_match("blocks.*.attn.hook_pattern", "blocks.11.attn.hook_pattern"));
  EXPECT_FALSE(glob_match("blocks.*.attn.hook_pattern", "blocks.1.attn.hook_z"));
  EXPECT_TRUE(glob_match("*", "hook_embed"));
  EXPECT_TRUE(glob_match("blocks.?.hook_resid_*", "blocks.3.hook_resid_mid"));
  EXPECT_FALSE(glob_match("blocks.?.hook_resid_*", "blocks.13.hook_resid_mid"));
  EXPECT_TRUE(glob_match("blocks.[0-2].*", "blocks.2.hook_mlp_out"));
  EXPECT_FALSE(glob_match("blocks.[0-2].*", "blocks.3.hook_mlp_out"));
  EXPECT_TRUE(glob_match("hook_embed", "hook_embed"));
  EXPECT_FALSE(glob_match("hook_embed", "hook_embed2"));
  EXPECT_EQ(hook_layer("blocks.12.attn.hook_q"), 12);
  EXPECT_EQ(hook_layer("hook_embed"), -1);
}

TEST(Hooks, ShapesFollowTransformerLens) {
  for (const char* fam : kFamilies) {
    auto m = test::tiny_model(fam);
    const ModelConfig& c = m->config();
    HookRegistry reg;
    ActivationCache cache;
    reg.add_forward("*", cache_hook(cache));
    ForwardOptions o;
    o.hooks = &reg;
    at::Tensor logits = m->forward(tokens(2, 6), o);
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 6, c.d_vocab}));
    EXPECT_EQ(cache.size(), m->hook_points().size()) << fam;
    EXPECT_EQ(cache["blocks.0.attn.hook_q"].sizes(), (std::vector<int64_t>{2, 6, c.n_heads, c.d_head}));
    EXPECT_EQ(cache["blocks.0.attn.hook_k"].sizes(), (std::vector<int64_t>{2, 6, c.n_kv_heads, c.d_head}));
    EXPECT_EQ(cache["blocks.0.attn.hook_v"].sizes(), (std::vector<int64_t>{2, 6, c.n_kv_heads, c.d_head}));
    EXPECT_EQ(cache["blocks.1.attn.hook_pattern"].sizes(), (std::vector<int64_t>{2, c.n_heads, 6, 6}));
    EXPECT_EQ(cache["blocks.1.attn.hook_result"].sizes(), (std::vector<int64_t>{2, 6, c.n_heads, c.d_model}));
    EXPECT_EQ(cache["blocks.0.ln1.hook_scale"].sizes(), (std::vector<int64_t>{2, 6, 1}));
    // Rows of the pattern sum to one; nothing above the diagonal.
    at::Tensor p = cache["blocks.1.attn.hook_pattern"];
    // A sum of at most 6 probabilities in float32: off 1 by a few eps.
    EXPECT_TRUE(test::close_rel(std::string(fam) + " pattern row sums", p.sum(-1), at::ones({2, c.n_heads, 6}), 64 * test::kF32Eps));
    EXPECT_EQ(p.triu(1).abs().max().item<double>(), 0.0);
    // Per-head results add up to the attention output.
    at::Tensor sum = cache["blocks.1.attn.hook_result"].sum(2);
    if (m->weights().layers[1].b_o.defined()) sum = sum + m->weights().layers[1].b_o;
    EXPECT_TRUE(test::close_rel(std::string(fam) + " heads sum to attn_out", sum, cache["blocks.1.hook_attn_out"], test::kReorderTol));
    // The residual stream adds up.
    at::Tensor rp = cache["blocks.0.hook_resid_pre"] + cache["blocks.0.hook_attn_out"];
    if (!c.attn_only()) rp = rp + cache["blocks.0.hook_mlp_out"];
    EXPECT_TRUE(test::close_rel(std::string(fam) + " resid adds up", rp, cache["blocks.0.hook_resid_post"], test::kReorderTol));
    if (c.sliding_window > 0) {  // key j is invisible from query i once i - j >= window
      EXPECT_EQ(p.tril(-c.sliding_window).abs().max().item<double>(), 0.0);
    }
  }
}

TEST(Hooks, PatchingWithOwnCacheChangesNothing) {
  for (const char* fam : kFamilies) {
    auto m = test::tiny_model(fam);
    at::Tensor toks = tokens(2, 7);
    HookRegistry reg;
    ActivationCache cache;
    reg.add_forward("*", cache_hook(cache));
    ForwardOptions o;
    o.hooks = &reg;
    at::Tensor base = m->forward(toks, o);
    HookRegistry patch;
    patch.add_forward("*", patch_hook(cache));
    o.hooks = &patch;
    at::Tensor patched = m->forward(toks, o);
    EXPECT_EQ(max_diff(base, patched), 0.0) << fam;
    // Patching a single head at one position from the same run also changes nothing (compared
    // with a run whose only live point is the same one, so the arithmetic is the same).
    HookRegistry zonly;
    ActivationCache zcache;
    zonly.add_forward("blocks.1.attn.hook_z", cache_hook(zcache));
    o.hooks = &zonly;
    at::Tensor zbase = m->forward(toks, o);
    HookRegistry one;
    one.add_forward("blocks.1.attn.hook_z", patch_hook(zcache, Selection{{3}, {2}}));
    o.hooks = &one;
    EXPECT_EQ(max_diff(zbase, m->forward(toks, o)), 0.0) << fam;
  }
}

TEST(Hooks, ZeroAblatingAHeadChangesOnlyDownstream) {
  for (const char* fam : kFamilies) {
    auto m = test::tiny_model(fam);
    at::Tensor toks = tokens(1, 8);
    auto run = [&](bool ablate) {
      HookRegistry reg;
      ActivationCache cache;
      if (ablate) reg.add_forward("blocks.1.attn.hook_z", zero_ablate_hook(Selection{{}, {2}}));
      reg.add_forward("*", cache_hook(cache));
      ForwardOptions o;
      o.hooks = &reg;
      m->forward(toks, o);
      return cache;
    };
    ActivationCache clean = run(false), ablated = run(true);
    // Upstream: everything in layer 0 and layer 1's attention inputs.
    for (const char* name : {"hook_embed", "blocks.0.hook_resid_post", "blocks.1.hook_resid_pre",
                             "blocks.1.attn.hook_q", "blocks.1.attn.hook_pattern"})
      EXPECT_EQ(max_diff(clean[name], ablated[name]), 0.0) << fam << " " << name;
    // The ablated head's output is zero, the other heads' untouched.
    at::Tensor z = ablated["blocks.1.attn.hook_z"];
    EXPECT_EQ(z.select(2, 2).abs().max().item<double>(), 0.0);
    EXPECT_EQ(max_diff(z.select(2, 1), clean["blocks.1.attn.hook_z"].select(2, 1)), 0.0);
    // Downstream changes.
    EXPECT_GT(max_diff(clean["blocks.1.hook_attn_out"], ablated["blocks.1.hook_attn_out"]), 1e-4) << fam;
    EXPECT_GT(max_diff(clean["blocks.1.hook_resid_post"], ablated["blocks.1.hook_resid_post"]), 1e-4) << fam;
  }
}

TEST(Hooks, KvCachedRunEqualsFullRecomputation) {
  for (const char* fam : kFamilies) {
    auto m = test::tiny_model(fam);
    at::Tensor toks = tokens(2, 10);
    at::Tensor full = m->forward(toks);
    KVCache cache = m->make_cache(2, 10);
    ForwardOptions o;
    o.cache = &cache;
    std::vector<at::Tensor> parts;
    parts.push_back(m->forward(toks.narrow(1, 0, 4), o));
    for (int64_t t = 4; t < 10; ++t) parts.push_back(m->forward(toks.narrow(1, t, 1), o));
    at::Tensor inc = at::cat(parts, 1);
    EXPECT_TRUE(test::close_rel(std::string(fam) + " KV-cached logits", inc, full, test::kReorderTol));
    EXPECT_EQ(cache.length, 10);
  }
}

TEST(Hooks, CachedHooksFireOnNewPositionsOnly) {
  auto m = test::tiny_model("llama");
  at::Tensor toks = tokens(1, 6);
  KVCache kv = m->make_cache(1, 6);
  HookRegistry reg;
  ActivationCache cache;
  reg.add_forward("blocks.0.attn.hook_pattern", cache_hook(cache));
  std::vector<int64_t> offsets;
  reg.add_forward("blocks.0.hook_resid_pre", [&](const at::Tensor& a, const HookContext& ctx) {
    offsets.push_back(ctx.pos_offset);
    EXPECT_EQ(a.size(1), ctx.pos_offset == 0 ? 4 : 1);
    return at::Tensor();
  });
  ForwardOptions o;
  o.hooks = &reg;
  o.cache = &kv;
  m->forward(toks.narrow(1, 0, 4), o);
  m->forward(toks.narrow(1, 4, 1), o);
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(cache["blocks.0.attn.hook_pattern"].sizes(), (std::vector<int64_t>{1, 4, 1, 5}));
}

TEST(Hooks, GreedyGenerationMatchesArgmaxWithoutCache) {
  auto m = test::tiny_model("neox");
  std::vector<int32_t> prompt{3, 14, 15, 9};
  GenerateOptions g;
  g.max_new = 8;
  g.stop_at_eos = false;
  std::vector<int32_t> out = m->generate(prompt, g);
  std::vector<int32_t> seq = prompt;
  for (int i = 0; i < 8; ++i) {
    at::Tensor logits = m->forward(m->tokens_tensor(seq));
    seq.push_back(static_cast<int32_t>(logits[0][-1].argmax().item<int64_t>()));
  }
  EXPECT_EQ(out, std::vector<int32_t>(seq.begin() + 4, seq.end()));
}

TEST(Hooks, BlockedAttentionEqualsMaterialised) {
  for (const char* fam : kFamilies) {
    auto m = test::tiny_model(fam);
    at::Tensor toks = tokens(2, 13);
    at::Tensor full = m->forward(toks);
    ForwardOptions o;
    o.attn_block = 3;
    // Only the GEMM shapes of the attention differ (blocks of 3 queries): float32 reordering.
    EXPECT_TRUE(test::close_rel(std::string(fam) + " blocked attention logits", m->forward(toks, o), full, test::kReorderTol));
  }
}

TEST(Hooks, FilteredOutHooksAreNotLive) {
  auto m = test::tiny_model("gpt2");
  HookRegistry reg;
  int calls = 0;
  reg.add_forward("blocks.99.*", [&](const at::Tensor&, const HookContext&) {
    ++calls;
    return at::Tensor();
  });
  ActiveHooks active(&reg, m->hook_points());
  EXPECT_FALSE(active.any());
  ForwardOptions o;
  o.hooks = &reg;
  at::Tensor toks = tokens(1, 5);
  EXPECT_EQ(max_diff(m->forward(toks), m->forward(toks, o)), 0.0);
  EXPECT_EQ(calls, 0);
}

TEST(Hooks, ScopeRemovesItsHooks) {
  HookRegistry reg;
  reg.add_forward("hook_embed", [](const at::Tensor&, const HookContext&) { return at::Tensor(); });
  {
    HookScope scope(reg);
    scope.add_forward("*", [](const at::Tensor&, const HookContext&) { return at::Tensor(); });
    scope.add_backward("*", [](const at::Tensor&, const HookContext&) { return at::Tensor(); });
    EXPECT_EQ(reg.entries().size(), 3u);
  }
  EXPECT_EQ(reg.entries().size(), 1u);
}

TEST(Hooks, SteeringAddsAtChosenPositionsOnly) {
  auto m = test::tiny_model("llama");
  at::Tensor toks = tokens(1, 6);
  at::Tensor base = m->forward(toks);
  HookRegistry reg;
  reg.add_forward("blocks.1.hook_resid_pre", add_vector_hook(at::ones({32}), 2.0, Selection{{3}, {}}));
  ForwardOptions o;
  o.hooks = &reg;
  at::Tensor steered = m->forward(toks, o);
  EXPECT_EQ(max_diff(base.narrow(1, 0, 3), steered.narrow(1, 0, 3)), 0.0);
  EXPECT_GT(max_diff(base.narrow(1, 3, 3), steered.narrow(1, 3, 3)), 1e-3);
}

TEST(Hooks, MeanAndResampleAblation) {
  auto m = test::tiny_model("gpt2");
  at::Tensor toks = tokens(4, 5);
  HookRegistry reg;
  ActivationCache ref;
  reg.add_forward("blocks.0.hook_mlp_out", cache_hook(ref));
  ForwardOptions o;
  o.hooks = &reg;
  m->forward(toks, o);
  HookRegistry ab;
  ActivationCache seen;
  ab.add_forward("blocks.0.hook_mlp_out", mean_ablate_hook(ref));
  ab.add_forward("blocks.0.hook_mlp_out", cache_hook(seen));
  o.hooks = &ab;
  m->forward(toks, o);
  at::Tensor mean = ref["blocks.0.hook_mlp_out"].mean(0);
  // A mean of 4 values: within a few eps of the values' scale, whatever order it is summed in.
  const double values = ref["blocks.0.hook_mlp_out"].abs().max().item<double>();
  for (int b = 0; b < 4; ++b)
    EXPECT_TRUE(test::close_rel("mean ablation " + std::to_string(b), seen["blocks.0.hook_mlp_out"][b], mean,
                                16 * test::kF32Eps, values));
  HookRegistry rs;
  ActivationCache seen2;
  rs.add_forward("blocks.0.hook_mlp_out", resample_ablate_hook(ref, 5));
  rs.add_forward("blocks.0.hook_mlp_out", cache_hook(seen2));
  o.hooks = &rs;
  m->forward(toks, o);
  // Every example now carries another example's activation.
  for (int b = 0; b < 4; ++b) {
    bool other = false;
    for (int j = 0; j < 4; ++j)
      if (j != b && max_diff(seen2["blocks.0.hook_mlp_out"][b], ref["blocks.0.hook_mlp_out"][j]) == 0.0) other = true;
    EXPECT_TRUE(other) << b;
  }
}

TEST(Hooks, BackwardHooksGiveTheGradient) {
  auto m = test::tiny_model("llama");
  at::Tensor toks = tokens(1, 6);
  HookRegistry reg;
  ActivationCache acts, grads;
  reg.add_forward("blocks.1.hook_resid_pre", cache_hook(acts));
  reg.add_backward("blocks.1.hook_resid_pre", cache_grad_hook(grads));
  reg.add_backward("blocks.0.hook_resid_pre", cache_grad_hook(grads));
  ForwardOptions o;
  o.hooks = &reg;
  at::Tensor logits = m->forward(toks, o);
  at::Tensor metric = logits[0][-1][7] - logits[0][-1][3];
  metric.backward();
  ASSERT_TRUE(grads.contains("blocks.1.hook_resid_pre"));
  ASSERT_TRUE(grads.contains("blocks.0.hook_resid_pre"));
  at::Tensor g = grads["blocks.1.hook_resid_pre"];
  // Check against a finite difference along the gradient: m(x + eps g) - m(x - eps g) ~ 2 eps |g|^2.
  auto metric_with = [&](double eps) {
    HookRegistry r;
    r.add_forward("blocks.1.hook_resid_pre", add_vector_hook(g, eps));
    ForwardOptions fo;
    fo.hooks = &r;
    at::NoGradGuard ng;
    at::Tensor l = m->forward(toks, fo).to(at::kDouble);
    return (l[0][-1][7] - l[0][-1][3]).item<double>();
  };
  double eps = 1e-2;
  double fd = (metric_with(eps) - metric_with(-eps)) / (2 * eps);
  double an = g.pow(2).sum().item<double>();
  EXPECT_NEAR(fd, an, 1e-2 * std::max(1.0, an));
  // The metric reads the last position, so its residual stream has a nonzero gradient.
  EXPECT_GT(g[0][5].abs().sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace ms
