// The bundled default model (resources/models/default): its files match the SHA-256 sums recorded
// next to them (an accidental change is caught), it loads and runs, and the mechanisms zoo.json
// records are measured again here on freshly generated data: an induction head, a retrieval head
// and first-token attention sinks.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/analysis/heads/head_detectors.h"
#include "core/analysis/retrieval/needle.h"
#include "core/analysis/retrieval/retrieval.h"
#include "core/zoo/zoo_measure.h"
#include "core/zoo/zoo_text.h"
#include "storage/sha256.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

const std::string kDir = ms::test::source_dir() + "/resources/models/default";

#define MS_REQUIRE_DEFAULT_MODEL()                                                        \
  do {                                                                                    \
    if (!std::ifstream(kDir + "/model.safetensors"))                                       \
      GTEST_SKIP() << kDir << " is not shipped in this tree";                             \
  } while (0)

std::unique_ptr<Model> load_default() {
  Result<std::unique_ptr<Model>> m = Model::load(kDir);
  if (!m) throw std::runtime_error(m.error().message);
  return std::move(*m);
}

TEST(DefaultModel, FilesMatchTheirRecordedSha256) {
  MS_REQUIRE_DEFAULT_MODEL();
  std::ifstream sums(kDir + "/SHA256SUMS");
  ASSERT_TRUE(sums) << kDir << "/SHA256SUMS is missing";
  std::string line;
  int checked = 0;
  while (std::getline(sums, line)) {
    std::istringstream in(line);
    std::string hex, name;
    in >> hex >> name;
    if (hex.empty()) continue;
    if (!name.empty() && name[0] == '*') name = name.substr(1);
    EXPECT_EQ(sha256_hex(test::read_file(kDir + "/" + name)), hex) << name << " changed";
    ++checked;
  }
  EXPECT_GE(checked, 3);
  EXPECT_NE(test::read_file(kDir + "/SHA256SUMS").find("model.safetensors"), std::string::npos);
}

TEST(DefaultModel, LoadsAndRunsAForwardPass) {
  MS_REQUIRE_DEFAULT_MODEL();
  auto m = load_default();
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.model_type, "gpt2");
  EXPECT_FALSE(c.attn_only());
  ASSERT_NE(m->tokenizer(), nullptr);
  std::vector<int32_t> ids = m->tokenizer()->encode("The old cat saw the red door.");
  ASSERT_GT(ids.size(), 3u);
  EXPECT_EQ(ids[0], m->tokenizer()->special().bos);
  at::Tensor logits = m->forward(m->tokens_tensor(ids));
  ASSERT_EQ(logits.sizes(), (at::IntArrayRef{1, static_cast<int64_t>(ids.size()), c.d_vocab}));
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
  // It has learnt its corpus: after "The old cat saw the red" the next token is likely a noun.
  EXPECT_EQ(m->tokenizer()->decode(ids, true), "The old cat saw the red door.");
  EXPECT_LT(at::cross_entropy_loss(logits[0].narrow(0, 0, ids.size() - 1),
                                   m->tokens_tensor(ids)[0].narrow(0, 1, ids.size() - 1))
                .item<double>(),
            5.0);
}

TEST(DefaultModel, RecordedMechanismsAreThere) {
  MS_REQUIRE_DEFAULT_MODEL();
  auto m = load_default();
  const ModelConfig& c = m->config();
  nlohmann::json zoo = nlohmann::json::parse(test::read_file(kDir + "/zoo.json"));
  EXPECT_EQ(zoo["name"], "default");
  EXPECT_FALSE(zoo["command"].get<std::string>().empty());

  // Induction: BOS + 20 tokens of random words, repeated; fresh seed.
  TextGenerator words(20240607);
  at::Tensor probe = repeated_word_probe(*m->tokenizer(), words, 32, 20);
  at::Tensor ind = induction_scores(*m, probe, 20).value();
  std::cout << "induction scores:\n" << ind << "\n";
  EXPECT_GT(ind.max().item<double>(), 0.5) << "no induction head";
  RepeatLoss rl = repeat_loss(*m, probe, 20).value();
  EXPECT_LT(rl.repeated, 0.5 * rl.first);

  // Retrieval: needle episodes in the corpus' own language, fresh seed.
  TextGenerator gen(99173);
  std::vector<Episode> eps;
  for (int i = 0; i < 48; ++i) eps.push_back(text_needle_episode(*m->tokenizer(), gen, c.n_ctx));
  RetrievalFigures rf = retrieval_scores(*m, eps, 0).value();
  std::cout << "retrieval scores:\n" << rf.scores << "\naccuracy " << rf.accuracy << "\n";
  EXPECT_FALSE(top_heads(rf.scores, 0.1).empty()) << "no retrieval head";

  // First-token sinks: alpha_0 > 0.3 on the model's own kind of text.
  at::Tensor text = corpus_batch(*m->tokenizer(), gen, 16, c.n_ctx).tokens;
  at::Tensor alpha = attention_to_position(*m, text, 0).value();
  std::cout << "alpha_0:\n" << alpha << "\n";
  const int64_t sinks = static_cast<int64_t>(top_heads(alpha, 0.3).size());
  EXPECT_EQ(sinks, zoo["measured"]["sink"]["n_heads_above_epsilon"].get<int64_t>())
      << "the number of sink heads differs from the one recorded";
}

// Wu et al.'s analysis as `mechscope retrieval` runs it, on needles in the default model's own
// style over the procedural haystack: a few retrieval heads, whose masking breaks retrieval while
// masking as many random heads does not.
TEST(DefaultModel, RetrievalHeadsAndTheCausalCheck) {
  MS_REQUIRE_DEFAULT_MODEL();
  auto m = load_default();
  Result<std::vector<Needle>> needles = read_needles(test::source_dir() + "/resources/needles/default-model.jsonl");
  ASSERT_TRUE(needles.ok()) << needles.error().message;
  const std::vector<int64_t> lengths = {48, 96};
  const std::vector<double> depths = depth_fractions(3);
  Result<std::vector<NeedleEpisode>> eps = text_episodes(*m, procedural_haystack(400, 5), *needles, lengths, depths);
  ASSERT_TRUE(eps.ok()) << eps.error().message;
  RetrievalOptions opts;
  opts.max_new = 8;
  auto run = [&](const std::vector<HeadRef>& masked) {
    return analyze_retrieval(*m, *eps, 2, 3, opts, masked).accuracy.mean().item<double>();
  };
  RetrievalReport base = analyze_retrieval(*m, *eps, 2, 3, opts);
  const double acc = base.accuracy.mean().item<double>();
  const std::vector<HeadRef> heads = retrieval_heads(base.head_score, 0.1);
  std::cout << "retrieval scores:\n" << base.head_score << "\naccuracy " << acc << "\n";
  EXPECT_GT(acc, 50.0);
  ASSERT_FALSE(heads.empty()) << "no retrieval head";
  EXPECT_LE(heads.size(), 4u) << "retrieval heads should be a few of the 16";
  const double top = run(heads);
  double random = 0;
  for (uint64_t seed = 0; seed < 3; ++seed)
    random += run(random_heads(4, 4, heads, static_cast<int64_t>(heads.size()), seed)) / 3;
  std::printf("accuracy %.1f; retrieval heads masked %.1f; as many random heads %.1f (mean of 3 draws)\n", acc,
              top, random);
  EXPECT_GT(acc - top, 50.0);
  EXPECT_LT(acc - random, 15.0);
}

// The head detectors' inputs on the default model (issue [6/7]: the detectors' default input, repeated
// random token ids, finds no induction head on it: arbitrary BPE ids never occur in its corpus).
// `--draw words` repeats random words in the corpus' own form and finds the recorded heads: layer 2's
// induction heads (zoo.json: 2.3 best) lead with margins, and score far above the random-id probe.
TEST(DefaultModel, HeadDetectorsFindItsInductionHeadsOnRepeatedWords) {
  MS_REQUIRE_DEFAULT_MODEL();
  const std::string db = test::temp_dir("default-heads") + "/h.db";
  auto top = [&](const std::string& draw) {
    auto r = test::run_mechscope({"heads", "--model", kDir, "--db", db, "--detect", "induction", "--draw", draw,
                                  "--seed", "5", "--threads", "1", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out)["detectors"]["induction_head"];
  };
  const nlohmann::json words = top("words"), ids = top("random");
  std::cout << "words: " << words.dump() << "\nrandom ids: " << ids.dump() << "\n";
  // The best head is one of layer 2's (2.0, 2.2, 2.3 score 0.70-0.80 on zoo.json's own probe).
  EXPECT_EQ(words[0]["layer"], 2);
  EXPECT_GT(words[0]["score"].get<double>(), 0.2);
  // ... and far above the best head on random ids (0.02 when this test was written).
  EXPECT_GT(words[0]["score"].get<double>(), 5 * ids[0]["score"].get<double>());
  // A model without a tokenizer cannot draw words: a usage error naming the reason.
  const std::string tiny = test::temp_dir("default-heads-tiny");
  auto z = test::run_mechscope({"zoo", "construct", "copy", "--out", tiny});
  ASSERT_EQ(z.exit_code, 0) << z.err;
  auto r = test::run_mechscope({"heads", "--model", tiny, "--db", db, "--draw", "words"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("tokenizer"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ms
