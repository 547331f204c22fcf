// Text needle episodes with a real tokenizer (stories260K's GGUF vocabulary): every prompt fits its
// length, the needle span decodes to the needle, it sits at a sentence boundary, and the prompt ends
// with the question; one episode decodes end to end with a masked head.
#include <gtest/gtest.h>

#include "core/analysis/retrieval/needle.h"
#include "core/analysis/retrieval/retrieval.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

TEST(RetrievalText, EpisodesFitAndTheNeedleSpanIsExact) {
  if (test::reference_dir().empty()) GTEST_SKIP() << "../shared/reference is absent; skipped";
  Result<std::unique_ptr<Model>> m = Model::load(test::reference_dir() + "/stories260K-gguf/stories260K.gguf");
  ASSERT_TRUE(m.ok()) << m.error().message;
  const Tokenizer* tok = (*m)->tokenizer();
  ASSERT_NE(tok, nullptr);
  std::vector<Needle> needles = default_needles();
  std::vector<int64_t> lengths = {200, 400};
  Result<std::vector<NeedleEpisode>> eps = text_episodes(**m, procedural_haystack(600, 1), needles, lengths, depth_fractions(3));
  ASSERT_TRUE(eps.ok()) << eps.error().message;
  ASSERT_EQ(eps->size(), 2u * 3u * needles.size());
  for (const NeedleEpisode& e : *eps) {
    EXPECT_LE(static_cast<int64_t>(e.prompt.size()), lengths[static_cast<size_t>(e.length_index)]);
    EXPECT_GT(static_cast<int64_t>(e.prompt.size()), lengths[static_cast<size_t>(e.length_index)] - 40);
    std::vector<int32_t> span(e.prompt.begin() + e.needle_begin, e.prompt.begin() + e.needle_end);
    const Needle& n = needles[static_cast<size_t>(e.needle_index)];
    std::string text = tok->decode(span, true);
    EXPECT_NE(text.find(n.needle), std::string::npos) << text;
    std::string all = tok->decode(e.prompt, true);
    EXPECT_NE(all.find("Question: " + n.question + "\nAnswer:"), std::string::npos);
    EXPECT_EQ(all.substr(all.size() - 7), "Answer:");
    if (e.depth_index == 0) {
      EXPECT_LE(e.needle_begin, 1);  // before the first sentence
    }
    if (e.needle_begin > 1) {                                // after a whole sentence
      std::string before = tok->decode(std::vector<int32_t>(e.prompt.begin(), e.prompt.begin() + e.needle_begin), true);
      EXPECT_EQ(before.back(), '.') << before;
    }
  }
  RetrievalOptions ro;
  ro.max_new = 8;
  EpisodeResult r = run_needle_episode(**m, eps->front(), ro, {{0, 0}}, true,
                                       [&](const std::vector<int32_t>& ids) { return tok->decode(ids, true); });
  EXPECT_GE(r.generated.size(), 1u);
  EXPECT_LE(r.generated.size(), 8u);
  EXPECT_EQ(r.head_score.size(0), (*m)->config().n_layers);
  EXPECT_GE(r.rouge, 0.0);
  EXPECT_LE(r.rouge, 1.0);
}

}  // namespace
}  // namespace ms
