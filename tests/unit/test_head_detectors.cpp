// Head detectors against hand-computed values: detection patterns of small sequences, the mul
// and abs measures with and without exclude_bos / exclude_current_token, and detect_heads and
// attention_to_position on a model built so that head 0.0 attends exactly to the previous token
// and head 0.1 uniformly.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/analysis/heads/head_detectors.h"
#include "core/zoo/zoo_train.h"

namespace ms {
namespace {

at::Tensor toks(std::vector<int64_t> v) { return at::tensor(v, at::kLong); }

TEST(HeadDetectors, DetectionPatterns) {
  at::Tensor t = toks({5, 7, 5, 7});
  at::Tensor prev = detection_pattern(HeadPattern::kPreviousToken, t);
  at::Tensor dup = detection_pattern(HeadPattern::kDuplicateToken, t);
  at::Tensor ind = detection_pattern(HeadPattern::kInduction, t);
  at::Tensor want_prev = at::tensor({0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}, at::kFloat).view({4, 4});
  // Query 2 (5) sees the 5 at 0; query 3 (7) sees the 7 at 1.
  at::Tensor want_dup = at::tensor({0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0}, at::kFloat).view({4, 4});
  // Query 2 (5): the token after the earlier 5 is at 1; query 3 (7): after the earlier 7, at 2.
  at::Tensor want_ind = at::tensor({0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}, at::kFloat).view({4, 4});
  EXPECT_TRUE(prev.equal(want_prev)) << prev;
  EXPECT_TRUE(dup.equal(want_dup)) << dup;
  EXPECT_TRUE(ind.equal(want_ind)) << ind;
  // A repeated token right after itself: the induction pattern includes the diagonal key.
  at::Tensor ind2 = detection_pattern(HeadPattern::kInduction, toks({3, 3}));
  EXPECT_EQ(ind2[1][1].item<float>(), 1.0f);
  // Batched patterns are the per-sequence ones stacked.
  at::Tensor batch = detection_pattern(HeadPattern::kInduction, at::stack({t, toks({1, 2, 3, 4})}));
  EXPECT_TRUE(batch[0].equal(want_ind));
  EXPECT_EQ(batch[1].sum().item<float>(), 0.0f);
}

TEST(HeadDetectors, MulAndAbsMeasures) {
  // A perfect previous-token head, except that query 0 can only attend to itself.
  at::Tensor a = at::zeros({1, 1, 4, 4});
  a[0][0][0][0] = 1;
  for (int i = 1; i < 4; ++i) a[0][0][i][i - 1] = 1;
  at::Tensor d = detection_pattern(HeadPattern::kPreviousToken, toks({1, 2, 3, 4}));
  DetectOptions mul, mul_cur{false, true, ErrorMeasure::kMul};
  DetectOptions abs{false, false, ErrorMeasure::kAbs}, abs_cur{false, true, ErrorMeasure::kAbs};
  EXPECT_NEAR(pattern_similarity(a, d, mul).item<double>(), 0.75, 1e-12);
  EXPECT_NEAR(pattern_similarity(a, d, mul_cur).item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(pattern_similarity(a, d, abs).item<double>(), 0.75, 1e-12);
  EXPECT_NEAR(pattern_similarity(a, d, abs_cur).item<double>(), 1.0, 1e-12);
  // exclude_bos drops key 0: row 1's weight on key 0 no longer counts in the denominator.
  DetectOptions mul_bos{true, false, ErrorMeasure::kMul};
  EXPECT_NEAR(pattern_similarity(a, d, mul_bos).item<double>(), 2.0 / 2.0, 1e-12);
  // A uniform causal head: mul = sum over rows i >= 1 of 1 / (i + 1), over 4 rows.
  at::Tensor u = at::ones({4, 4}).tril();
  u = (u / u.sum(1, true)).view({1, 1, 4, 4});
  EXPECT_NEAR(pattern_similarity(u, d, mul).item<double>(), (1.0 / 2 + 1.0 / 3 + 1.0 / 4) / 4, 1e-7);
}

TEST(HeadDetectors, ParsesTransformerLensNames) {
  for (HeadPattern p : {HeadPattern::kPreviousToken, HeadPattern::kDuplicateToken, HeadPattern::kInduction}) {
    Result<HeadPattern> r = parse_head_pattern(head_pattern_name(p));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, p);
  }
  EXPECT_FALSE(parse_head_pattern("sink_head").ok());
}

// One layer, two heads of 16 dims. Token embeddings are zero and position p embeds as the
// one-hot e_p, so after LayerNorm every position reads a * e_p - b. Head 0's query at i is
// s * (a e_{i-1} - b) against keys a e_j - b: the only large score is at j = i - 1. Head 1 has zero
// queries: uniform attention.
std::unique_ptr<Model> previous_token_model() {
  ModelConfig c;
  c.model_type = "gpt2";
  c.n_layers = 1;
  c.d_model = 32;
  c.n_heads = c.n_kv_heads = 2;
  c.d_head = 16;
  c.d_mlp = 0;
  c.d_vocab = 20;
  c.n_ctx = 16;
  c.qkv_bias = c.o_bias = true;
  c.tie_embeddings = true;
  ModelWeights w = init_weights(c, 1);
  w.w_e.zero_();
  w.w_u = w.w_e;
  w.w_pos = at::zeros({16, 32});
  for (int p = 0; p < 16; ++p) w.w_pos[p][p] = 1;
  at::Tensor qkv = at::zeros({96, 32});
  for (int m = 0; m < 15; ++m) qkv[m][m + 1] = 10;  // head 0 query: position m + 1 -> dim m
  for (int m = 0; m < 16; ++m) {
    qkv[32 + m][m] = 1;                              // head 0 key: position m -> dim m
    qkv[64 + m][m] = 1;                              // values: anything
  }
  w.layers[0].w_qkv = qkv;
  auto m = Model::from_weights(c, std::move(w));
  if (!m) throw std::runtime_error(m.error().message);
  return std::move(*m);
}

TEST(HeadDetectors, DetectHeadsOnAConstructedPreviousTokenHead) {
  auto model = previous_token_model();
  at::Tensor tokens = at::randint(0, 20, {3, 12}, at::kLong);
  Result<at::Tensor> prev = detect_heads(*model, tokens, HeadPattern::kPreviousToken);
  ASSERT_TRUE(prev.ok()) << prev.error().message;
  ASSERT_EQ(prev->sizes(), (at::IntArrayRef{1, 2}));
  // Head 0: every row but the first puts all its weight on the previous token.
  EXPECT_NEAR((*prev)[0][0].item<double>(), 11.0 / 12.0, 1e-4);
  double uniform = 0;
  for (int i = 1; i < 12; ++i) uniform += 1.0 / (i + 1);
  EXPECT_NEAR((*prev)[0][1].item<double>(), uniform / 12.0, 1e-6);
  Result<at::Tensor> prev_cur = detect_heads(*model, tokens, HeadPattern::kPreviousToken, {false, true, ErrorMeasure::kMul});
  EXPECT_NEAR((*prev_cur)[0][0].item<double>(), 1.0, 1e-4);

  // detect_heads is the batch mean of pattern_similarity on the hooked patterns.
  Result<at::Tensor> a = layer_attention(*model, tokens, 0);
  ASSERT_TRUE(a.ok()) << a.error().message;
  for (HeadPattern p : {HeadPattern::kDuplicateToken, HeadPattern::kInduction}) {
    for (ErrorMeasure e : {ErrorMeasure::kMul, ErrorMeasure::kAbs}) {
      DetectOptions o{true, false, e};
      at::Tensor want = pattern_similarity(*a, detection_pattern(p, tokens), o).mean(0);
      Result<at::Tensor> got = detect_heads(*model, tokens, p, o);
      ASSERT_TRUE(got.ok());
      EXPECT_TRUE(at::allclose((*got)[0], want, 1e-9, 1e-12, true)) << head_pattern_name(p);
    }
  }

  // alpha_0: head 0 attends to position 0 from queries 0 and 1 only; head 1 with 1 / (t + 1).
  Result<at::Tensor> alpha = attention_to_position(*model, tokens, 0);
  ASSERT_TRUE(alpha.ok());
  EXPECT_NEAR((*alpha)[0][0].item<double>(), 2.0 / 12.0, 1e-4);
  EXPECT_NEAR((*alpha)[0][1].item<double>(), (1.0 + uniform) / 12.0, 1e-6);
  // alpha_k for k = 5 averages over the queries t >= 5 only.
  Result<at::Tensor> alpha5 = attention_to_position(*model, tokens, 5);
  double u5 = 0;
  for (int t = 5; t < 12; ++t) u5 += 1.0 / (t + 1);
  EXPECT_NEAR((*alpha5)[0][1].item<double>(), u5 / 7.0, 1e-6);
  EXPECT_FALSE(attention_to_position(*model, tokens, 12).ok());
}

}  // namespace
}  // namespace ms
