// BPE training: the written tokenizer.json loads with core's loader, round-trips any UTF-8 text,
// merges frequent words into single tokens, prepends BOS, and is the same for the same corpus;
// the zoo's ASCII tokenizer maps bytes to themselves.
#include <gtest/gtest.h>

#include "core/tokenizer/bpe_train.h"
#include "core/tokenizer/tokenizer.h"
#include "core/zoo/zoo_text.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

std::string corpus(uint64_t seed, size_t chars) {
  TextGenerator gen(seed);
  std::string out;
  while (out.size() < chars) out += gen.document() + "\n\n";
  return out;
}

std::unique_ptr<Tokenizer> load(const std::string& json_text) {
  const std::string path = test::temp_dir("bpe") + "/tokenizer.json";
  test::write_file(path, json_text);
  Result<std::unique_ptr<Tokenizer>> tok = load_tokenizer_json(path);
  if (!tok) throw std::runtime_error(tok.error().message);
  return std::move(*tok);
}

TEST(BpeTrain, TrainsLoadsAndRoundTrips) {
  const std::string text = corpus(3, 300000);
  BpeTrainOptions o;
  o.vocab_size = 600;
  Result<BpeModel> m = train_bpe(text, o);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->vocab.size(), 600u);
  EXPECT_EQ(m->merges.size(), 600u - 257u);
  EXPECT_EQ(m->vocab[0], "<|endoftext|>");

  auto tok = load(bpe_tokenizer_json(*m, true));
  EXPECT_EQ(tok->vocab_size(), 600);
  EXPECT_EQ(tok->special().bos, 0);
  // Frequent words of the grammar are single tokens; BOS comes first.
  std::vector<int32_t> ids = tok->encode("The cat saw the dog.");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 0);
  EXPECT_LE(ids.size(), 9u) << "BOS The cat saw the dog . in a few tokens";
  EXPECT_EQ(tok->encode(" the", false).size(), 1u);
  EXPECT_EQ(tok->encode("The", false).size(), 1u);
  EXPECT_EQ(tok->decode(ids, true), "The cat saw the dog.");
  // Any UTF-8 round-trips: every byte has a token.
  for (const std::string& s : {std::string("naïve café, 日本語 🙂\n\n  tabs\tand   spaces"),
                              text.substr(0, 5000), std::string("\x01\x7f zolvak 12345")}) {
    std::vector<int32_t> e = tok->encode(s, false);
    EXPECT_EQ(tok->decode(e), s);
  }
  // Compression on the corpus it was trained on: well under one token per 2 bytes.
  const std::string sample = text.substr(0, 20000);
  EXPECT_LT(tok->encode(sample, false).size(), sample.size() / 2);
}

TEST(BpeTrain, SameCorpusSameTokenizer) {
  const std::string text = corpus(5, 100000);
  BpeTrainOptions o;
  o.vocab_size = 400;
  Result<BpeModel> a = train_bpe(text, o), b = train_bpe(text, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->merges, b->merges);
  EXPECT_EQ(bpe_tokenizer_json(*a, true), bpe_tokenizer_json(*b, true));
}

TEST(BpeTrain, RefusesAVocabularyWithoutRoomForBytes) {
  BpeTrainOptions o;
  o.vocab_size = 100;
  Result<BpeModel> m = train_bpe("some text", o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kUsage);
}

TEST(BpeTrain, AsciiTokenizerIdsAreBytes) {
  auto tok = load(bpe_tokenizer_json(ascii_bpe_model(), true));
  EXPECT_EQ(tok->vocab_size(), 128);
  std::vector<int32_t> ids = tok->encode("<K=123>?K=");
  std::vector<int32_t> want{0, '<', 'K', '=', '1', '2', '3', '>', '?', 'K', '='};
  EXPECT_EQ(ids, want);
  EXPECT_EQ(tok->decode(ids, true), "<K=123>?K=");
}

}  // namespace
}  // namespace ms
