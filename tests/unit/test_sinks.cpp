// Sink analysis on tiny models: the report agrees with metrics computed from the materialised
// patterns and residual stream; ACT calibration keeps rows normalised, leaves the first token
// alone, scales the sinks by beta and is a no-op at beta = 1.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/analysis/sinks/sinks.h"
#include "hooks/activation_cache.h"
#include "tests/support/numerics.h"
#include "tests/support/tiny_models.h"

namespace ms {
namespace {

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

TEST(Sinks, ReportMatchesMaterialisedMetrics) {
  for (const char* fam : {"gpt2", "llama", "mistral"}) {
    auto m = test::tiny_model(fam, 21);
    const ModelConfig& c = m->config();
    std::vector<std::vector<int32_t>> prompts{{1, 5, 9, 4, 4, 7, 30, 2, 11, 8, 3, 19, 22, 40},
                                              {3, 3, 3, 17, 18, 19, 2, 49, 0, 1}};
    SinkOptions o;
    o.attn_block = 3;
    o.hidden_threshold = 0.12;
    SinkReport r = analyze_sinks(*m, prompts, o);
    ASSERT_EQ(r.n_prompts, 2);
    at::Tensor alpha0 = at::zeros({c.n_layers, c.n_heads}, at::kDouble);
    // A key whose alpha lies within rounding of the threshold may fall either side of it: count
    // those clearly above and those not clearly below.
    int64_t hidden_lo = 0, hidden_hi = 0;
    for (const auto& ids : prompts) {
      HookRegistry reg;
      ActivationCache cache;
      reg.add_forward("blocks.*.attn.hook_pattern", cache_hook(cache));
      ForwardOptions fo;
      fo.hooks = &reg;
      m->forward(m->tokens_tensor(ids), fo);
      const int64_t T = static_cast<int64_t>(ids.size());
      for (int64_t l = 0; l < c.n_layers; ++l) {
        at::Tensor a = cache["blocks." + std::to_string(l) + ".attn.hook_pattern"][0].to(at::kDouble);  // (H, T, T)
        at::Tensor vis = at::ones({T, T}, at::kDouble).tril();
        if (c.sliding_window > 0) vis = vis.triu(-(c.sliding_window - 1));
        at::Tensor alpha = a.sum(1) / vis.sum(0);  // (H, T)
        alpha0[l] += alpha.select(-1, 0);
        at::Tensor rest = alpha.narrow(-1, 1, T - 1);
        hidden_lo += (rest > 0.12 + test::kReorderTol).sum().item<int64_t>();
        hidden_hi += (rest > 0.12 - test::kReorderTol).sum().item<int64_t>();
      }
    }
    // Streamed in blocks of 3 queries against whole rows: float32 sums in another order.
    EXPECT_TRUE(test::close_rel(std::string(fam) + " alpha_0", r.head_alpha0, alpha0 / 2, test::kReorderTol));
    const int64_t found = static_cast<int64_t>(r.hidden.size());
    EXPECT_GE(found, hidden_lo) << fam;
    EXPECT_LE(found, hidden_hi) << fam;
    EXPECT_EQ(r.head_hidden_count.sum().item<int64_t>(), found) << fam;
    EXPECT_NEAR(r.sink_rate_first, 100.0 * (r.head_sink_rate.mean().item<double>()), 1e-9);
  }
}

TEST(Sinks, MassiveActivationsAreFoundWhereTheyAre) {
  auto m = test::tiny_model("gpt2", 4);
  // Plant a huge value into the residual stream through a hook-free route: the embedding row of
  // token 7, dimension 5 (the residual stream carries it to every layer's output).
  m->weights().w_e = m->weights().w_e.clone();
  m->weights().w_e[7][5] = 5000.0;
  SinkReport r = analyze_sinks(*m, {{1, 2, 7, 3, 4, 5, 6, 8, 9, 10}}, SinkOptions{});
  ASSERT_FALSE(r.massive.empty());
  for (const auto& a : r.massive) {
    EXPECT_EQ(a.position, 2);
    EXPECT_EQ(a.dim, 5);
    EXPECT_GT(std::abs(a.value), 100.0);
    EXPECT_GE(a.ratio_to_median, 1000.0);
  }
}

AttentionBlock random_block(int64_t tb, int64_t nk, int64_t q_begin) {
  AttentionBlock b;
  b.layer = 0;
  b.q_begin = q_begin;
  b.n_queries = tb;
  b.k_begin = 0;
  b.n_keys = nk;
  at::Tensor q = at::arange(q_begin, q_begin + tb).unsqueeze(1), k = at::arange(nk).unsqueeze(0);
  at::Generator g = at::detail::createCPUGenerator(static_cast<uint64_t>(17 + q_begin));
  at::Tensor scores = at::randn({1, 2, tb, nk}, g).masked_fill(q - k < 0, -INFINITY);
  b.pattern = at::softmax(scores, -1);
  return b;
}

TEST(Sinks, CalibrationRedistributesTheSinksMass) {
  AttentionBlock b = random_block(6, 10, 4);
  at::Tensor before = b.pattern.clone();
  SinkCalibration cal({{0, 1}}, {0, 3}, 0.4);
  cal.on_block(b);
  at::Tensor after = b.pattern;
  // Rows still sum to 1 (10 probabilities rescaled and summed in float32: a few eps).
  EXPECT_TRUE(test::close_rel("calibrated row sums", after.sum(-1), at::ones({1, 2, 6}), 64 * test::kF32Eps));
  EXPECT_EQ(max_diff(after.select(1, 0), before.select(1, 0)), 0.0);       // other head untouched
  EXPECT_LT(max_diff(after.select(1, 1).select(-1, 0), before.select(1, 1).select(-1, 0)), 1e-7);  // first token
  EXPECT_LT(max_diff(after.select(1, 1).select(-1, 3), 0.4 * before.select(1, 1).select(-1, 3)), 1e-7);
  // The other visible keys (all but 0 and 3) grow in proportion to their attention: one gain per
  // row, above 1, the same for every such key of the row to float32 rounding (a product and a
  // quotient: a few eps). Rows differ in gain, so each row is checked on its own.
  at::Tensor others = at::tensor({1, 2, 4, 5, 6, 7, 8, 9}, at::kLong);
  at::Tensor b_rest = before.select(1, 1)[0].index_select(-1, others), a_rest = after.select(1, 1)[0].index_select(-1, others);
  for (int64_t q = 0; q < 6; ++q) {
    at::Tensor valid = b_rest[q] > 0;
    at::Tensor ratio = a_rest[q].masked_select(valid) / b_rest[q].masked_select(valid);
    const double gain = ratio[0].item<double>();
    EXPECT_GT(gain, 1.0) << "row " << q;
    EXPECT_TRUE(test::close_rel("gain of row " + std::to_string(q), ratio, at::full_like(ratio, gain), 16 * test::kF32Eps));
  }
}

TEST(Sinks, CalibrationWithBetaOneIsANoOp) {
  auto m = test::tiny_model("llama", 3);
  at::Tensor toks = at::randint(0, 50, {1, 12}, at::kLong);
  SinkCalibration cal({{1, 0}, {2, 3}}, {0, 4, 7}, 1.0);
  ForwardOptions fo;
  fo.attention = &cal;
  EXPECT_EQ(max_diff(m->forward(toks, fo), m->forward(toks)), 0.0);
  SinkCalibration strong({{1, 0}, {2, 3}}, {4, 7}, 0.0);
  fo.attention = &strong;
  EXPECT_GT(max_diff(m->forward(toks, fo), m->forward(toks)), 1e-4);
}

}  // namespace
}  // namespace ms
