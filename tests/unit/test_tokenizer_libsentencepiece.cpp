// Cross-check of our SentencePiece BPE against libsentencepiece itself. libsentencepiece's
// bundled protobuf crashes a process that also loads LibTorch, so this only runs in a build
// without LibTorch that defines MECHSCOPE_WITH_LIBSENTENCEPIECE and links -lsentencepiece.
#include <gtest/gtest.h>

#include <random>

#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/unicode.h"
#include "tests/unit/tokenizer_vectors.h"

#ifdef MECHSCOPE_WITH_LIBSENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

namespace ms::test {
namespace {

TEST(TokenizerLibSentencePiece, SameIdsAsOurSpmBpe) {
#ifndef MECHSCOPE_WITH_LIBSENTENCEPIECE
  GTEST_SKIP() << "built without MECHSCOPE_WITH_LIBSENTENCEPIECE (libsentencepiece cannot share "
                  "a process with LibTorch)";
#else
  MS_REQUIRE_REFERENCE();
  const std::string model = ref_path("llama2-tokenizer/tokenizer.model");
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(model).ok());
  auto r = load_sentencepiece_model(model);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Tokenizer& tok = *r.value();
  auto sp_ids = [&](const std::string& s) {
    std::vector<int> ids;
    EXPECT_TRUE(sp.Encode(s, &ids).ok());
    return std::vector<int32_t>(ids.begin(), ids.end());
  };
  int n = 0;
  for (const TokCase& c : read_llamacpp_vectors("llama-spm")) {
    EXPECT_EQ(show_ids(sp_ids(c.text)), show_ids(c.ids)) << "libsentencepiece vs llama.cpp";
    EXPECT_EQ(show_ids(tok.encode(c.text, false, false)), show_ids(sp_ids(c.text))) << c.text;
    ++n;
  }
  EXPECT_EQ(n, 46);
  std::mt19937 rng(99);
  std::uniform_int_distribution<uint32_t> cp_dist(0x20, 0x2FFF);
  for (int i = 0; i < 500; ++i) {
    std::string s;
    const int len = 1 + i % 40;
    for (int k = 0; k < len; ++k) {
      uint32_t cp = k % 4 == 0 ? ' ' : cp_dist(rng);
      if (i % 2) cp = 0x20 + cp % 0x5F;  // half the cases plain ASCII
      utf8_append(s, cp);
    }
    EXPECT_EQ(show_ids(tok.encode(s, false, false)), show_ids(sp_ids(s))) << "case " << i;
    std::string decoded;
    std::vector<int> ids;
    ASSERT_TRUE(sp.Encode(s, &ids).ok());
    ASSERT_TRUE(sp.Decode(ids, &decoded).ok());
    EXPECT_EQ(tok.decode(std::vector<int32_t>(ids.begin(), ids.end())), decoded) << "case " << i;
  }
#endif
}

}  // namespace
}  // namespace ms::test
