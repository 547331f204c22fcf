// Tokenizers against published expected ids: GPT-3-Encoder's and llama.cpp's vectors for GPT-2,
// llama.cpp's "mpt" vectors for GPT-NeoX's tokenizer.json, and llama.cpp's "llama-spm" and
// llama2.c's vectors for Llama 2 through tokenizer.model, the GGUF path and tokenizer.json.
#include <gtest/gtest.h>

#include <chrono>

#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/unicode.h"
#include "tests/unit/tokenizer_vectors.h"

namespace ms::test {
namespace {

std::unique_ptr<Tokenizer> must(Result<std::unique_ptr<Tokenizer>> r) {
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok()) return nullptr;
  EXPECT_NE(r.value(), nullptr);
  return std::move(r).value();
}

std::unique_ptr<Tokenizer> gpt2() {
  return must(load_vocab_merges(ref_path("gpt2-tokenizer/encoder.json"),
                                ref_path("gpt2-tokenizer/vocab.bpe")));
}

std::unique_ptr<Tokenizer> llama_sp() {
  return must(load_sentencepiece_model(ref_path("llama2-tokenizer/tokenizer.model")));
}

// llama.cpp's test-tokenizer-0 calls tokenize(text, add_special = false, parse_special = false).
constexpr bool kNoSpecial = false;

// ---- GPT-2 ----

TEST(TokenizerGpt2, Gpt3EncoderVectors) {
  MS_REQUIRE_REFERENCE();
  auto tok = gpt2();
  ASSERT_TRUE(tok);
  const auto cases = read_json_vectors("gpt2-tokenizer/gpt3encoder_test_vectors.json");
  EXPECT_EQ(expect_cases(*tok, cases, true, true, "gpt3-encoder"), static_cast<int>(cases.size()));
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->special().eos, 50256);
  EXPECT_FALSE(tok->special().add_bos);
}

TEST(TokenizerGpt2, LlamaCppVectorsFromVocabMerges) {
  MS_REQUIRE_REFERENCE();
  auto tok = gpt2();
  ASSERT_TRUE(tok);
  const auto cases = read_llamacpp_vectors("gpt-2");
  EXPECT_EQ(cases.size(), 46u);
  EXPECT_EQ(expect_cases(*tok, cases, kNoSpecial, kNoSpecial, "gpt-2"),
            static_cast<int>(cases.size()));
}

TEST(TokenizerGpt2, LlamaCppVectorsFromGgufVocab) {
  MS_REQUIRE_REFERENCE();
  auto tok = must(tokenizer_from_gguf_vocab(gguf_vocab_from_gpt2_files()));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->kind(), "byte-level BPE (GGUF)");
  const auto cases = read_llamacpp_vectors("gpt-2");
  EXPECT_EQ(expect_cases(*tok, cases, kNoSpecial, kNoSpecial, "gpt-2 gguf"),
            static_cast<int>(cases.size()));
}

TEST(TokenizerGpt2, DecodeInvertsEncodeOnVectorInputs) {
  MS_REQUIRE_REFERENCE();
  auto tok = gpt2();
  ASSERT_TRUE(tok);
  for (const TokCase& c : read_llamacpp_vectors("gpt-2")) {
    EXPECT_EQ(tok->decode(tok->encode(c.text, false)), c.text);
    EXPECT_EQ(tok->decode(c.ids), c.text);
  }
}

TEST(TokenizerGpt2, TokenText) {
  MS_REQUIRE_REFERENCE();
  auto tok = gpt2();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->token_text(262), " the");
  EXPECT_EQ(tok->token_text(198), "\n");
  EXPECT_EQ(tok->token_text(50256), "<|endoftext|>");
  // 👋 is F0 9F 91 8B; GPT-2 splits " 👋" as 50169 (20 F0 9F 91) + 233 (8B).
  EXPECT_EQ(tok->token_text(50169), " \\xF0\\x9F\\x91");
  EXPECT_EQ(tok->token_text(233), "\\x8B");
}

TEST(TokenizerGpt2, SpecialTokenParsing) {
  MS_REQUIRE_REFERENCE();
  auto tok = gpt2();
  ASSERT_TRUE(tok);
  const auto with = tok->encode("a<|endoftext|>b", false, true);
  EXPECT_EQ(show_ids(with), "64 50256 65");
  const auto without = tok->encode("a<|endoftext|>b", false, false);
  EXPECT_EQ(std::count(without.begin(), without.end(), 50256), 0);
  EXPECT_EQ(tok->decode(without), "a<|endoftext|>b");
  EXPECT_EQ(tok->decode(with, true), "ab");
  EXPECT_EQ(tok->decode(with, false), "a<|endoftext|>b");
}

// ---- GPT-NeoX (llama.cpp's "mpt" vocabulary) ----

TEST(TokenizerNeox, LlamaCppMptVectorsFromFolder) {
  MS_REQUIRE_REFERENCE();
  const auto t0 = std::chrono::steady_clock::now();
  auto tok = must(load_tokenizer(ref_path("gpt-neox-tokenizer")));
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(tok);
  std::printf("GPT-NeoX tokenizer.json loaded in %.3f s\n", load_s);
  EXPECT_LT(load_s, 1.0);
  EXPECT_EQ(tok->kind(), "byte-level BPE (tokenizer.json)");
  EXPECT_EQ(tok->vocab_size(), 50277);
  EXPECT_EQ(tok->special().bos, 0);  // tokenizer_config.json: bos_token <|endoftext|>
  EXPECT_EQ(tok->special().eos, 0);
  EXPECT_FALSE(tok->special().add_bos);
  const auto cases = read_llamacpp_vectors("mpt");
  EXPECT_EQ(expect_cases(*tok, cases, kNoSpecial, kNoSpecial, "mpt"),
            static_cast<int>(cases.size()));
  for (const TokCase& c : cases) {
    EXPECT_EQ(tok->decode(c.ids), unicode_normalize(c.text, NormalForm::kNfc));
    EXPECT_EQ(tok->decode(tok->encode(c.text)), unicode_normalize(c.text, NormalForm::kNfc));
  }
}

// The same vocabulary through the GGUF "gpt2" path (added tokens as control / user-defined).
TEST(TokenizerNeox, LlamaCppMptVectorsFromGgufVocab) {
  MS_REQUIRE_REFERENCE();
  const auto doc = nlohmann::json::parse(read_file(ref_path("gpt-neox-tokenizer/tokenizer.json")));
  GgufVocab v;
  v.model = "gpt2";
  v.pre = "mpt";
  for (const auto& [token, id] : doc["model"]["vocab"].items()) {
    if (v.tokens.size() <= id.get<size_t>()) v.tokens.resize(id.get<size_t>() + 1);
    v.tokens[id.get<size_t>()] = token;
  }
  v.token_types.assign(v.tokens.size(), 1);
  for (const auto& a : doc["added_tokens"]) {
    const auto id = a["id"].get<size_t>();
    if (v.tokens.size() <= id) {
      v.tokens.resize(id + 1);
      v.token_types.resize(id + 1, 1);
    }
    v.tokens[id] = a["content"].get<std::string>();
    v.token_types[id] = a["special"].get<bool>() ? 3 : 4;
  }
  for (const auto& m : doc["model"]["merges"]) v.merges.push_back(m.get<std::string>());
  auto tok = must(tokenizer_from_gguf_vocab(v));
  ASSERT_TRUE(tok);
  const auto cases = read_llamacpp_vectors("mpt");
  EXPECT_EQ(expect_cases(*tok, cases, kNoSpecial, kNoSpecial, "mpt gguf"),
            static_cast<int>(cases.size()));
}

TEST(TokenizerNeox, AddedTokensAndSpecials) {
  MS_REQUIRE_REFERENCE();
  auto tok = must(load_tokenizer_json(ref_path("gpt-neox-tokenizer/tokenizer.json")));
  ASSERT_TRUE(tok);
  // "<|endoftext|>" is special (id 0): parsed only with parse_special.
  EXPECT_EQ(tok->encode("<|endoftext|>", false, true), std::vector<int32_t>{0});
  EXPECT_GT(tok->encode("<|endoftext|>", false, false).size(), 1u);
  // The runs of spaces are non-special added tokens: parsed either way, e.g. 4 spaces = 50274.
  EXPECT_EQ(show_ids(tok->encode("    Hello", false, false)), "50274 12092");
  EXPECT_EQ(tok->token_text(50274), "    ");
  EXPECT_EQ(tok->decode({50274, 12092}, true), "    Hello");
}

// ---- Llama 2 (llama.cpp's "llama-spm" vocabulary, llama2.c's vectors) ----

TEST(TokenizerLlama, LlamaCppSpmVectorsThroughTokenizerModel) {
  MS_REQUIRE_REFERENCE();
  auto tok = llama_sp();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->kind(), "SentencePiece BPE (tokenizer.model)");
  const auto cases = read_llamacpp_vectors("llama-spm");
  EXPECT_EQ(expect_cases(*tok, cases, kNoSpecial, kNoSpecial, "llama-spm tokenizer.model"),
            static_cast<int>(cases.size()));
}

// Phi-3's vocabulary is Llama 2's 32,000 SentencePiece pieces (its tokenizer.json adds chat tokens
// from id 32000 on); llama.cpp's "phi-3" vectors, made with Phi-3's own tokenizer, must come out of
// the Llama 2 tokenizer.model unchanged. (No Gemma, Qwen or OLMo tokenizer file is in
// ../shared/reference; their vectors cannot be checked here.)
TEST(TokenizerLlama, Phi3VectorsThroughTheLlama2Vocabulary) {
  MS_REQUIRE_REFERENCE();
  auto tok = llama_sp();
  ASSERT_TRUE(tok);
  const auto cases = read_llamacpp_vectors("phi-3");
  ASSERT_GT(cases.size(), 20u);
  EXPECT_EQ(expect_cases(*tok, cases, kNoSpecial, kNoSpecial, "phi-3 via tokenizer.model"), static_cast<int>(cases.size()));
}

TEST(TokenizerLlama, LlamaCppSpmVectorsThroughGgufVocab) {
  MS_REQUIRE_REFERENCE();
  auto tok = must(tokenizer_from_gguf_vocab(
      gguf_vocab_from_sentencepiece(ref_path("llama2-tokenizer/tokenizer.model"))));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->kind(), "SentencePiece BPE (GGUF)");
  const auto cases = read_llamacpp_vectors("llama-spm");
  EXPECT_EQ(expect_cases(*tok, cases, kNoSpecial, kNoSpecial, "llama-spm gguf"),
            static_cast<int>(cases.size()));
}

TEST(TokenizerLlama, LlamaCppSpmVectorsThroughTokenizerJson) {
  MS_REQUIRE_REFERENCE();
  const std::string dir = temp_dir("llama-json");
  write_file(dir + "/tokenizer.json",
             hf_json_from_sentencepiece(ref_path("llama2-tokenizer/tokenizer.model"), false));
  auto tok = must(load_tokenizer(dir));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->kind(), "SentencePiece-style BPE (tokenizer.json)");
  EXPECT_TRUE(tok->special().add_bos);
  EXPECT_EQ(tok->special().bos, 1);
  const auto cases = read_llamacpp_vectors("llama-spm");
  EXPECT_EQ(expect_cases(*tok, cases, kNoSpecial, kNoSpecial, "llama-spm tokenizer.json"),
            static_cast<int>(cases.size()));
}

// Hugging Face's Metaspace (prepend_scheme "first") prepends "▁" only when the text does not
// already start with one, so " Hello" encodes like SentencePiece's "Hello".
TEST(TokenizerLlama, MetaspaceTokenizerJsonMatchesSentencePiece) {
  MS_REQUIRE_REFERENCE();
  auto sp = llama_sp();
  const std::string dir = temp_dir("mistral-json");
  write_file(dir + "/tokenizer.json",
             hf_json_from_sentencepiece(ref_path("llama2-tokenizer/tokenizer.model"), true));
  auto tok = must(load_tokenizer(dir));
  ASSERT_TRUE(tok && sp);
  int n = 0;
  for (const TokCase& c : read_llamacpp_vectors("llama-spm")) {
    const bool lead_space = !c.text.empty() && c.text[0] == ' ';
    auto expected = lead_space ? sp->encode(c.text.substr(1), false, false) : c.ids;
    if (c.text == " ") expected = {29871};  // "▁" alone; SentencePiece gives nothing for ""
    EXPECT_EQ(show_ids(tok->encode(c.text, false, false)), show_ids(expected)) << c.text;
    ++n;
  }
  EXPECT_EQ(n, 46);
  // Special tokens are split out first; the text after them is not at the start.
  EXPECT_EQ(show_ids(tok->encode("<s>Hello", false, true)), "1 10994");
  EXPECT_EQ(tok->decode(tok->encode("Hello world")), "<s> Hello world");
  EXPECT_EQ(tok->decode(tok->encode("Hello world"), true), "Hello world");
}

TEST(TokenizerLlama, Llama2cVectorsWithBos) {
  MS_REQUIRE_REFERENCE();
  const auto cases = read_json_vectors("llama2-tokenizer/llama2c_test_c_vectors.json");
  auto sp = llama_sp();
  auto gguf = must(tokenizer_from_gguf_vocab(
      gguf_vocab_from_sentencepiece(ref_path("llama2-tokenizer/tokenizer.model"))));
  const std::string dir = temp_dir("llama-json");
  write_file(dir + "/tokenizer.json",
             hf_json_from_sentencepiece(ref_path("llama2-tokenizer/tokenizer.model"), false));
  auto json_tok = must(load_tokenizer(dir));
  ASSERT_TRUE(sp && gguf && json_tok);
  const int n = static_cast<int>(cases.size());
  EXPECT_EQ(expect_cases(*sp, cases, true, true, "llama2.c tokenizer.model"), n);
  EXPECT_EQ(expect_cases(*gguf, cases, true, true, "llama2.c gguf"), n);
  EXPECT_EQ(expect_cases(*json_tok, cases, true, true, "llama2.c tokenizer.json"), n);
  for (const TokCase& c : cases) {
    EXPECT_EQ(sp->decode(c.ids, true), c.text);
    EXPECT_EQ(gguf->decode(c.ids, true), c.text);
    EXPECT_EQ(json_tok->decode(c.ids, true), c.text);
  }
}

TEST(TokenizerLlama, DecodeAndTokenText) {
  MS_REQUIRE_REFERENCE();
  auto sp = llama_sp();
  auto gguf = must(tokenizer_from_gguf_vocab(
      gguf_vocab_from_sentencepiece(ref_path("llama2-tokenizer/tokenizer.model"))));
  ASSERT_TRUE(sp && gguf);
  for (const Tokenizer* tok : {sp.get(), gguf.get()}) {
    SCOPED_TRACE(tok->kind());
    EXPECT_EQ(tok->vocab_size(), 32000);
    EXPECT_EQ(tok->token_text(13), "<0x0A>");
    EXPECT_EQ(tok->token_text(15043), " Hello");
    EXPECT_EQ(tok->token_text(1), "<s>");
    EXPECT_EQ(tok->special().bos, 1);
    EXPECT_EQ(tok->special().eos, 2);
    for (const TokCase& c : read_llamacpp_vectors("llama-spm")) {
      EXPECT_EQ(tok->decode(c.ids), c.text);
      EXPECT_EQ(tok->decode(tok->encode(c.text, false)), c.text);
    }
    // Control tokens in text are parsed only when asked.
    EXPECT_EQ(show_ids(tok->encode("</s>", false, true)), "2");
    EXPECT_NE(show_ids(tok->encode("</s>", false, false)), "2");
  }
}

// stories260K's 512-token vocabulary (llama2.c's tok512.bin: scores, no types) as a GGUF
// "llama" vocabulary: decoding run.c's greedy ids gives the text llama2.c's own test expects.
TEST(TokenizerLlama, Stories260KGreedyTextFromTok512) {
  MS_REQUIRE_REFERENCE();
  const std::string bin = read_file(ref_path("stories260K/tok512.bin"));
  GgufVocab v;
  v.model = "llama";
  size_t pos = 4;  // max_token_length
  for (int i = 0; i < 512; ++i) {
    float score;
    int32_t len;
    std::memcpy(&score, bin.data() + pos, 4);
    std::memcpy(&len, bin.data() + pos + 4, 4);
    std::string piece = bin.substr(pos + 8, len);
    pos += 8 + len;
    // llama2.c writes "▁" as a space and "<s>" as "\n<s>\n"; GGUF keeps the SentencePiece form.
    std::string sp_piece;
    for (char ch : piece) sp_piece += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
    if (i == 1) sp_piece = "<s>";
    if (i == 2) sp_piece = "</s>";
    v.tokens.push_back(sp_piece);
    v.scores.push_back(score);
    v.token_types.push_back(i == 0 ? 2 : i <= 2 ? 3 : i <= 258 ? 6 : 1);
  }
  ASSERT_EQ(pos, bin.size());
  v.special.bos = 1;
  v.special.eos = 2;
  v.special.unk = 0;
  v.special.add_bos = true;
  auto tok = must(tokenizer_from_gguf_vocab(v));
  ASSERT_TRUE(tok);
  const auto ref = nlohmann::json::parse(read_file(ref_path("stories260K/reference_logits_run_c.json")));
  const auto ids = ref.at("greedy_from_bos_ids").get<std::vector<int32_t>>();
  const std::string expected =
      read_file(ref_path("stories260K/expected_greedy_200steps_from_llama2c_test_all.txt"));
  EXPECT_EQ(tok->decode(ids, true), expected);
  // Re-encoding the decoded text gives a valid tokenization that decodes to the same text.
  EXPECT_EQ(tok->decode(tok->encode(expected), true), expected);
}

}  // namespace
}  // namespace ms::test
