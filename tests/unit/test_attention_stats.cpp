// The streaming attention statistics equal the ones computed from the materialised pattern, for
// every architecture family (GQA and sliding windows included), and an observer that edits the
// pattern changes the output exactly like a hook on hook_pattern that does the same.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/attention/attention_stats.h"
#include "hooks/activation_cache.h"
#include "tests/support/numerics.h"
#include "tests/support/tiny_models.h"

namespace ms {
namespace {

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

TEST(AttentionStats, StreamingEqualsMaterialised) {
  for (const char* fam : {"gpt2", "neox", "llama", "mistral", "attn_only"}) {
    auto m = test::tiny_model(fam, 5);
    const ModelConfig& c = m->config();
    const int64_t B = 2, T = 23;
    at::Tensor toks = at::randint(0, 50, {B, T}, at::kLong);
    // Materialised: every pattern through the hook point.
    HookRegistry reg;
    ActivationCache cache;
    reg.add_forward("blocks.*.attn.hook_pattern", cache_hook(cache));
    ForwardOptions fo;
    fo.hooks = &reg;
    m->forward(toks, fo);
    // Streaming: blocks of 4 queries, no pattern ever materialised whole.
    AttentionStats stats(c.n_layers, c.n_heads, B, T);
    ForwardOptions so;
    so.attention = &stats;
    so.attn_block = 4;
    m->forward(toks, so);
    for (int64_t l = 0; l < c.n_layers; ++l) {
      at::Tensor a = cache["blocks." + std::to_string(l) + ".attn.hook_pattern"];  // (B, H, T, T)
      at::Tensor visible = a.new_ones({T, T}).tril();
      if (c.sliding_window > 0) visible = visible.triu(-(c.sliding_window - 1));
      at::Tensor alpha = a.sum(2) / visible.sum(0);
      // Blocks of 4 queries against whole rows: the same float32 values summed in another order.
      const std::string at_l = std::string(fam) + " layer " + std::to_string(l);
      EXPECT_TRUE(test::close_rel(at_l + " alpha", stats.alpha()[l], alpha, test::kReorderTol));
      EXPECT_TRUE(test::close_rel(at_l + " entropy", stats.entropy()[l], -at::xlogy(a, a).sum(-1), test::kReorderTol));
      EXPECT_TRUE(test::close_rel(at_l + " max weight", stats.max_weight()[l], std::get<0>(a.max(-1)), test::kReorderTol));
      // The same argmax, except between keys whose weights are equal to rounding (then either is).
      at::Tensor other = stats.argmax()[l], same = other == std::get<1>(a.max(-1));
      at::Tensor at_other = a.gather(-1, other.unsqueeze(-1)).squeeze(-1);
      EXPECT_TRUE(test::close_rel(at_l + " weight at argmax", at_other.masked_select(same.logical_not()),
                                  std::get<0>(a.max(-1)).masked_select(same.logical_not()), test::kReorderTol, 1.0));
      at::Tensor sinks = at::tensor({0, 3}, at::kLong);
      EXPECT_TRUE(test::close_rel(at_l + " mass on 0, 3", stats.mass_on(sinks)[l],
                                  a.index_select(-1, sinks).sum(-1).mean(-1), test::kReorderTol));
    }
    // Gu et al.'s definition for causal models: alpha_k = sum_{i >= k} A[i, k] / (T - k).
    if (c.sliding_window == 0) {
      EXPECT_EQ(stats.key_visible()[0].item<int64_t>(), T);
    }
  }
}

// Sets head 1 of layer 1 to uniform attention over its visible keys.
class UniformHead : public AttentionObserver {
 public:
  bool wants_layer(int64_t l) const override { return l == 1; }
  void on_block(AttentionBlock& b) override {
    at::Tensor h = b.pattern.select(1, 1);  // (B, tb, nk)
    at::Tensor vis = (h > 0).to(at::kFloat);
    h.copy_(vis / vis.sum(-1, true));
  }
};

TEST(AttentionStats, EditingObserverEqualsPatternHook) {
  auto m = test::tiny_model("llama", 9);
  at::Tensor toks = at::randint(0, 50, {1, 12}, at::kLong);
  UniformHead edit;
  ForwardOptions so;
  so.attention = &edit;
  so.attn_block = 5;
  at::Tensor edited = m->forward(toks, so);
  HookRegistry reg;
  reg.add_forward("blocks.1.attn.hook_pattern", [](const at::Tensor& a, const HookContext&) {
    at::Tensor out = a.clone();
    at::Tensor vis = (a.select(1, 1) > 0).to(a.scalar_type());
    out.select(1, 1).copy_(vis / vis.sum(-1, true));
    return out;
  });
  ForwardOptions ho;
  ho.hooks = &reg;
  at::Tensor hooked = m->forward(toks, ho);
  EXPECT_TRUE(test::close_rel("observer vs hook logits", edited, hooked, test::kReorderTol));
  EXPECT_GT(max_diff(edited, m->forward(toks)), 1e-4);
}

}  // namespace
}  // namespace ms
