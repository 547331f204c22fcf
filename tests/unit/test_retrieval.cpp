// Retrieval-head pieces on hand-made data: the per-step scoring rule (hit, misses, repeated hits),
// ROUGE-1 recall, the argmax observer, uniform head masking, random head draws and the episode
// builders (id episodes, text splitting, needle files).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "core/analysis/retrieval/needle.h"
#include "core/analysis/retrieval/retrieval.h"
#include "core/attention/fused_attention.h"
#include "core/model/model.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_models.h"

namespace ms {
namespace {

// Two layers x two heads; prompt tokens with a needle at [3, 6).
const std::vector<int32_t> kTokens = {0, 9, 9, 20, 21, 22, 9, 9, 20};

TEST(RetrievalScore, HitInsideTheNeedleOnTheGeneratedToken) {
  std::vector<double> s = retrieval_step_scores({4, 1, 0, 4}, 3, 6, kTokens, 21);
  EXPECT_DOUBLE_EQ(s[0], 1.0 / 3);
  EXPECT_DOUBLE_EQ(s[1], 0.0);
  EXPECT_DOUBLE_EQ(s[2], 0.0);
  EXPECT_DOUBLE_EQ(s[3], 1.0 / 3);
}

TEST(RetrievalScore, MissOutsideTheNeedleEvenOnTheSameToken) {
  // Position 8 holds 20 like the needle's first token, but lies outside the span.
  std::vector<double> s = retrieval_step_scores({8, 8, 2, 6}, 3, 6, kTokens, 20);
  for (double v : s) EXPECT_EQ(v, 0.0);
}

TEST(RetrievalScore, MissOnADifferentToken) {
  std::vector<double> s = retrieval_step_scores({3, 4, 5, 5}, 3, 6, kTokens, 99);
  for (double v : s) EXPECT_EQ(v, 0.0);
}

TEST(RetrievalScore, RepeatedHitsCountPerStep) {
  double total = 0;
  for (int step = 0; step < 4; ++step) total += retrieval_step_scores({3}, 3, 6, kTokens, 20)[0];
  EXPECT_DOUBLE_EQ(total, 4.0 / 3);
  EXPECT_EQ(retrieval_step_scores({3}, 3, 3, kTokens, 20)[0], 0.0);  // empty needle
}

TEST(RetrievalScore, RougeRecall) {
  EXPECT_DOUBLE_EQ(rouge1_recall(rouge_words("Smoked paprika, of course."), rouge_words("smoked paprika")), 1.0);
  EXPECT_DOUBLE_EQ(rouge1_recall(rouge_words("paprika"), rouge_words("smoked paprika")), 0.5);
  EXPECT_DOUBLE_EQ(rouge1_recall(rouge_words("the the"), rouge_words("the cat the")), 2.0 / 3);
  EXPECT_DOUBLE_EQ(rouge1_recall({}, {}), 0.0);
}

AttentionBlock decode_block(at::Tensor pattern, int64_t layer, int64_t q) {
  AttentionBlock b;
  b.layer = layer;
  b.q_begin = q;
  b.n_queries = pattern.size(2);
  b.k_begin = 0;
  b.n_keys = pattern.size(3);
  b.pattern = pattern;
  return b;
}

TEST(RetrievalObserver, ArgmaxOfTheSingleQueryRowPerHead) {
  ArgmaxObserver o(2, 2);
  at::Tensor p = at::tensor({0.1f, 0.6f, 0.3f, 0.0f, 0.2f, 0.2f, 0.1f, 0.5f}).view({1, 2, 1, 4});
  AttentionBlock b = decode_block(p, 1, 3);
  o.on_block(b);
  EXPECT_EQ(o.argmax(), (std::vector<int64_t>{-1, -1, 1, 3}));
  AttentionBlock prefill = decode_block(at::full({1, 2, 2, 4}, 0.25f), 0, 2);
  o.on_block(prefill);  // several queries: a prefill block, not a decode step
  EXPECT_EQ(o.argmax()[0], -1);
  o.reset();
  EXPECT_EQ(o.argmax()[2], -1);
}

// A decode step's argmax from the fused kernel (scores read once) equals the one read from the
// materialised probabilities, for every head of every layer, GQA and a sliding window included.
TEST(RetrievalObserver, FusedDecodeArgmaxEqualsMaterialised) {
  for (const char* family : {"llama", "mistral", "gpt2"}) {
    std::unique_ptr<Model> m = test::tiny_model(family, 5);
    const ModelConfig& c = m->config();
    std::vector<int32_t> prompt;
    for (int i = 0; i < 40; ++i) prompt.push_back(static_cast<int32_t>((i * 7 + 3) % c.d_vocab));
    std::vector<int64_t> got[2];
    int64_t fused_calls = 0;
    for (int fused = 0; fused < 2; ++fused) {
      KVCache cache = m->make_cache(1, 48);
      ArgmaxObserver argmax(c.n_layers, c.n_heads);
      ForwardOptions fo;
      fo.cache = &cache;
      fo.attention_kernel = fused ? AttentionKernel::kAuto : AttentionKernel::kMaterialise;
      m->forward(m->tokens_tensor(prompt), fo);
      fo.attention = &argmax;
      const int64_t before = fused_attention_calls();
      for (int32_t t : {5, 9, 2}) {
        argmax.reset();
        m->forward(m->tokens_tensor({t}), fo);
        got[fused].insert(got[fused].end(), argmax.argmax().begin(), argmax.argmax().end());
      }
      if (fused) fused_calls = fused_attention_calls() - before;
    }
    EXPECT_EQ(fused_calls, 3 * c.n_layers) << family << ": the scored steps did not take the fused kernel";
    EXPECT_EQ(got[0], got[1]) << family;
    EXPECT_TRUE(std::none_of(got[1].begin(), got[1].end(), [](int64_t k) { return k < 0; })) << family;
  }
}

TEST(RetrievalMask, ChosenHeadsBecomeUniformOverVisibleKeys) {
  at::Tensor p = at::softmax(at::randn({1, 3, 4, 4}), -1);
  p = p * at::tril(at::ones({4, 4}));
  p = p / p.sum(-1, true);
  at::Tensor before = p.clone();
  AttentionBlock b = decode_block(p, 0, 0);
  HeadMask m({{0, 1}, {1, 0}});
  EXPECT_TRUE(m.wants_layer(0));
  EXPECT_TRUE(m.wants_layer(1));
  m.on_block(b);
  at::Tensor want = at::tril(at::ones({4, 4}));
  want = want / want.sum(-1, true);
  EXPECT_TRUE(at::allclose(p[0][1], want));
  EXPECT_TRUE(at::equal(p[0][0], before[0][0]));
  EXPECT_TRUE(at::equal(p[0][2], before[0][2]));
  // Sliding window 2: each query sees itself and the key before.
  at::Tensor q = at::full({1, 1, 1, 6}, 1.0f / 6);
  AttentionBlock w = decode_block(q, 0, 5);
  w.sliding_window = 2;
  HeadMask({{0, 0}}).on_block(w);
  EXPECT_TRUE(at::allclose(q.view({6}), at::tensor({0.f, 0.f, 0.f, 0.f, 0.5f, 0.5f})));
}

TEST(RetrievalHeads, RankThresholdAndRandomDraws) {
  at::Tensor s = at::tensor({0.0, 0.9, 0.05, 0.3}, at::kDouble).view({2, 2});
  auto r = rank_heads(s);
  EXPECT_EQ(r[0].first.layer, 0);
  EXPECT_EQ(r[0].first.head, 1);
  std::vector<HeadRef> top = retrieval_heads(s, 0.1);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[1].layer, 1);
  EXPECT_EQ(top[1].head, 1);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::vector<HeadRef> d = random_heads(2, 2, top, 5, seed);
    EXPECT_EQ(d.size(), 2u);
    for (const auto& h : d) EXPECT_FALSE((h.layer == 0 && h.head == 1) || (h.layer == 1 && h.head == 1));
  }
  EXPECT_EQ(random_heads(4, 4, {}, 3, 7).size(), 3u);
}

TEST(Needles, IdEpisodesPlaceTheNeedleAtEachDepth) {
  IdEpisodeSpec spec;
  std::vector<NeedleEpisode> eps = id_episodes(spec, {64, 128}, depth_fractions(3));
  ASSERT_EQ(eps.size(), 2u * 3u * 2u);
  for (const auto& e : eps) {
    int64_t len = e.length_index == 0 ? 64 : 128;
    ASSERT_EQ(static_cast<int64_t>(e.prompt.size()), len);
    EXPECT_EQ(e.prompt[0], 0);
    EXPECT_EQ(e.needle_end - e.needle_begin, 16);
    std::vector<int32_t> needle(e.prompt.begin() + e.needle_begin, e.prompt.begin() + e.needle_end);
    // The cue is the needle's first id after <delim>; the answer the rest of the needle.
    EXPECT_EQ(e.prompt[e.prompt.size() - 2], 1);
    EXPECT_EQ(e.prompt.back(), needle[0]);
    EXPECT_EQ(e.answer, std::vector<int32_t>(needle.begin() + 1, needle.end()));
    // Needle ids are distinct and appear nowhere else before the cue.
    for (size_t i = 0; i + 1 < e.prompt.size(); ++i) {
      bool in = static_cast<int64_t>(i) >= e.needle_begin && static_cast<int64_t>(i) < e.needle_end;
      if (!in) {
        EXPECT_EQ(std::count(needle.begin(), needle.end(), e.prompt[i]), 0) << i;
      }
    }
  }
  EXPECT_EQ(eps[0].needle_begin, 1);                               // depth 0
  EXPECT_EQ(eps[4].needle_end, static_cast<int64_t>(64 - 2));      // depth 1: just before <delim>
}

TEST(Needles, LengthsDepthsHaystackAndFiles) {
  std::vector<int64_t> l = default_lengths(4096);
  ASSERT_EQ(l.size(), 10u);
  EXPECT_EQ(l.front(), 256);
  EXPECT_EQ(l.back(), 4096 - 64);
  EXPECT_EQ(depth_fractions(10).front(), 0.0);
  EXPECT_EQ(depth_fractions(10).back(), 1.0);
  std::string h = procedural_haystack(200, 3);
  EXPECT_EQ(h, procedural_haystack(200, 3));
  EXPECT_GE(std::count(h.begin(), h.end(), ' ') + 1, 200);
  EXPECT_EQ(h.back(), '.');
  Result<std::vector<Needle>> n = read_needles(ms::test::source_dir() + "/resources/needles/default.jsonl");
  ASSERT_TRUE(n.ok()) << n.error().message;
  std::vector<Needle> d = default_needles();
  ASSERT_EQ(n->size(), d.size());
  for (size_t i = 0; i < d.size(); ++i) {
    EXPECT_EQ((*n)[i].needle, d[i].needle);
    EXPECT_EQ((*n)[i].answer, d[i].answer);
  }
  std::string bad = test::temp_dir("needles") + "/bad.jsonl";
  std::ofstream(bad) << "{\"needle\": \"x\"}\n";
  Result<std::vector<Needle>> e = read_needles(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("bad.jsonl:1"), std::string::npos) << e.error().message;
}

}  // namespace
}  // namespace ms
