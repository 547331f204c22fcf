// Retrieval heads on the constructed `copy` model, whose copy head 1.0 is a retrieval head by
// design: it scores > 0.5 and every other head ~0; masking it drops needle accuracy by more than 50
// points, masking one random non-retrieval head leaves it unless the draw hits the copy circuit's
// previous-token head 0.0 (which the copy head reads through K-composition).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/analysis/retrieval/needle.h"
#include "core/analysis/retrieval/retrieval.h"
#include "core/zoo/zoo_construct.h"

namespace ms {
namespace {

struct Fixture {
  std::unique_ptr<Model> model;
  std::vector<NeedleEpisode> eps;
  std::vector<int64_t> lengths = {48, 96, 160, 238};
  std::vector<double> depths = depth_fractions(5);
  RetrievalOptions opts;
  Fixture() {
    ConstructedModel c = build_copy_model();
    Result<std::unique_ptr<Model>> m = Model::from_weights(c.config, c.weights);
    EXPECT_TRUE(m.ok());
    model = std::move(*m);
    eps = id_episodes(IdEpisodeSpec{}, lengths, depths);
    opts.exact_match = true;
  }
  RetrievalReport run(const std::vector<HeadRef>& masked = {}) {
    return analyze_retrieval(*model, eps, static_cast<int64_t>(lengths.size()), static_cast<int64_t>(depths.size()),
                             opts, masked);
  }
};

double mean_accuracy(const RetrievalReport& r) { return r.accuracy.mean().item<double>(); }

TEST(RetrievalOnCopyModel, PlantedHeadScoresHighOthersZero) {
  Fixture f;
  RetrievalReport r = f.run();
  EXPECT_EQ(r.n_tests, static_cast<int64_t>(f.eps.size()));
  EXPECT_EQ(r.n_counted, r.n_tests);
  EXPECT_DOUBLE_EQ(mean_accuracy(r), 100.0);
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t h = 0; h < 4; ++h) {
      double s = r.head_score[l][h].item<double>();
      std::printf("head %lld.%lld retrieval score %.4f\n", static_cast<long long>(l), static_cast<long long>(h), s);
      if (l == 1 && h == 0) EXPECT_GT(s, 0.5);
      else EXPECT_LT(s, 0.01) << l << "." << h;
    }
  std::vector<HeadRef> top = retrieval_heads(r.head_score, 0.1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].layer, 1);
  EXPECT_EQ(top[0].head, 0);
}

TEST(RetrievalOnCopyModel, MaskingTheTopHeadBreaksRetrievalRandomHeadsDoNot) {
  Fixture f;
  RetrievalReport base = f.run();
  std::vector<HeadRef> top = retrieval_heads(base.head_score, 0.1);
  ASSERT_EQ(top.size(), 1u);
  RetrievalReport masked = f.run(top);
  double drop_top = mean_accuracy(base) - mean_accuracy(masked);
  std::printf("accuracy unmasked %.1f, top-1 masked %.1f (drop %.1f)\n", mean_accuracy(base),
              mean_accuracy(masked), drop_top);
  EXPECT_GT(drop_top, 50.0);
  int clean = 0;
  for (uint64_t seed = 0; seed < 6; ++seed) {
    std::vector<HeadRef> rnd = random_heads(2, 4, top, 1, seed);
    bool hits_circuit = rnd[0].layer == 0 && rnd[0].head == 0;
    double drop = mean_accuracy(base) - mean_accuracy(f.run(rnd));
    std::printf("seed %llu: random head %lld.%lld masked, drop %.1f%s\n", static_cast<unsigned long long>(seed),
                static_cast<long long>(rnd[0].layer), static_cast<long long>(rnd[0].head), drop,
                hits_circuit ? " (the previous-token head of the copy circuit)" : "");
    if (!hits_circuit) {
      EXPECT_LT(drop, 10.0);
      ++clean;
    }
  }
  EXPECT_GE(clean, 4);
}

// Prefilling through the KV cache in chunks (how long prompts keep their memory bounded) gives
// exactly what one prefill gives: the same tokens, the same per-head scores, masked or not.
TEST(RetrievalOnCopyModel, ChunkedPrefillChangesNothing) {
  Fixture f;
  for (const std::vector<HeadRef>& masked : {std::vector<HeadRef>{}, std::vector<HeadRef>{{0, 1}, {1, 2}}}) {
    RetrievalOptions whole = f.opts, chunked = f.opts;
    whole.prefill_chunk = 0;
    chunked.prefill_chunk = 7;
    for (size_t i = 0; i < f.eps.size(); i += 5) {
      EpisodeResult a = run_needle_episode(*f.model, f.eps[i], whole, masked);
      EpisodeResult b = run_needle_episode(*f.model, f.eps[i], chunked, masked);
      EXPECT_EQ(a.generated, b.generated) << "episode " << i;
      EXPECT_TRUE(at::allclose(a.head_score, b.head_score)) << "episode " << i;
    }
  }
}

}  // namespace
}  // namespace ms
