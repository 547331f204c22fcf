// Tokenizer behaviour beyond the published vectors: round trips on random UTF-8, invalid input,
// malformed files, folder detection and special-token config files, and small hand-made
// tokenizer.json files (Llama 3 style byte-level, Mistral style Metaspace + byte fallback).
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "core/tokenizer/tokenizer.h"
#include "core/tokenizer/tokenizer_text.h"
#include "core/tokenizer/unicode.h"
#include "tests/support/test_support.h"
#include "tests/unit/tokenizer_vectors.h"

namespace ms::test {
namespace {

using nlohmann::json;

std::unique_ptr<Tokenizer> must(Result<std::unique_ptr<Tokenizer>> r) {
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok()) return nullptr;
  return std::move(r).value();
}

// Random valid UTF-8 mixing ASCII, whitespace, Latin, CJK, emoji and combining marks.
std::string random_utf8(std::mt19937& rng, size_t n_chars) {
  static const std::vector<std::pair<uint32_t, uint32_t>> kRanges = {
      {0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0x24F}, {0x300, 0x36F}, {0x400, 0x4FF},
      {0x1780, 0x17FF}, {0x3040, 0x30FF}, {0x4E00, 0x4FFF}, {0xAC00, 0xAD00},
      {0x1F300, 0x1F6FF}, {0x200B, 0x200D}, {0x1, 0x1F}, {0xE000, 0xE0FF}, {0x10000, 0x10FFFF}};
  std::uniform_int_distribution<size_t> pick(0, kRanges.size() - 1);
  std::string s;
  for (size_t i = 0; i < n_chars; ++i) {
    const auto& [lo, hi] = kRanges[i % 3 == 0 ? 0 : pick(rng)];
    uint32_t cp = std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
    utf8_append(s, cp);
  }
  return s;
}

TEST(TokenizerRoundTrip, RandomUtf8ByteLevel) {
  MS_REQUIRE_REFERENCE();
  auto gpt2 = must(load_vocab_merges(ref_path("gpt2-tokenizer/encoder.json"),
                                     ref_path("gpt2-tokenizer/vocab.bpe")));
  auto neox = must(load_tokenizer(ref_path("gpt-neox-tokenizer")));
  ASSERT_TRUE(gpt2 && neox);
  std::mt19937 rng(20240611);
  for (int i = 0; i < 300; ++i) {
    const std::string s = random_utf8(rng, 1 + i % 97);
    ASSERT_EQ(utf8_invalid_offset(s), kUtf8Valid);
    EXPECT_EQ(gpt2->decode(gpt2->encode(s)), s) << "case " << i;
    // GPT-NeoX normalizes to NFC first, so its round trip gives the NFC form.
    EXPECT_EQ(neox->decode(neox->encode(s)), unicode_normalize(s, NormalForm::kNfc)) << "case " << i;
  }
}

// Two derivations of the same Llama 2 vocabulary: merges ranked by piece score (GGUF) and an
// explicit merge list (tokenizer.json, built as Hugging Face's converter does) agree.
TEST(TokenizerRoundTrip, RandomUtf8SentencePieceByteFallback) {
  MS_REQUIRE_REFERENCE();
  auto gguf = must(tokenizer_from_gguf_vocab(
      gguf_vocab_from_sentencepiece(ref_path("llama2-tokenizer/tokenizer.model"))));
  const std::string dir = temp_dir("llama-json");
  write_file(dir + "/tokenizer.json",
             hf_json_from_sentencepiece(ref_path("llama2-tokenizer/tokenizer.model"), false));
  auto json_tok = must(load_tokenizer_json(dir + "/tokenizer.json"));
  ASSERT_TRUE(gguf && json_tok);
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string s = random_utf8(rng, 1 + i % 61);
    const auto ids = gguf->encode(s, false, false);
    EXPECT_EQ(show_ids(json_tok->encode(s, false, false)), show_ids(ids)) << "case " << i;
    // Characters outside the vocabulary come back from their <0xXX> byte pieces.
    EXPECT_EQ(gguf->decode(ids), s) << "case " << i;
  }
}

// Hugging Face's documented examples for Split's behaviours on "the-final--countdown".
TEST(TokenizerText, SplitBehaviours) {
  auto run = [](SplitBehavior b, bool invert = false) {
    PreTokenizer pre;
    pre.add_split_string("-", b, invert);
    std::vector<std::string> words;
    pre.run("the-final--countdown", true, words);
    std::string joined;
    for (const auto& w : words) joined += (joined.empty() ? "" : "|") + w;
    return joined;
  };
  EXPECT_EQ(run(SplitBehavior::kRemoved), "the|final|countdown");
  EXPECT_EQ(run(SplitBehavior::kIsolated), "the|-|final|-|-|countdown");
  EXPECT_EQ(run(SplitBehavior::kMergedWithPrevious), "the-|final-|-|countdown");
  EXPECT_EQ(run(SplitBehavior::kMergedWithNext), "the|-final|-|-countdown");
  EXPECT_EQ(run(SplitBehavior::kContiguous), "the|-|final|--|countdown");
  EXPECT_EQ(run(SplitBehavior::kRemoved, true), "-|-|-");
  PreTokenizer digits;
  digits.add_digits(true);
  std::vector<std::string> words;
  digits.run("ab123", true, words);
  EXPECT_EQ(words, (std::vector<std::string>{"ab", "1", "2", "3"}));
}

TEST(TokenizerText, GptNeoxNormalizesToNfc) {
  MS_REQUIRE_REFERENCE();
  auto tok = must(load_tokenizer(ref_path("gpt-neox-tokenizer")));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("caf" "e\xCC\x81"), tok->encode("caf\xC3\xA9"));  // e + U+0301 = é
  EXPECT_EQ(tok->decode(tok->encode("caf" "e\xCC\x81")), "caf\xC3\xA9");
}

TEST(TokenizerInput, InvalidUtf8IsAnInputErrorWithTheOffset) {
  MS_REQUIRE_REFERENCE();
  auto tok = must(load_tokenizer(ref_path("gpt-neox-tokenizer")));
  ASSERT_TRUE(tok);
  const std::vector<std::pair<std::string, size_t>> bad = {
      {"ab\xFF", 2}, {"hello \xC3", 6}, {"\xE2\x82", 0}, {"ok\xED\xA0\x80", 2},  // surrogate
      {"x\xC0\xAF", 1},  // overlong
      {"abc\xF4\x90\x80\x80", 3}, {"\x80", 0}};
  for (const auto& [text, at] : bad) {
    try {
      (void)tok->encode(text);
      ADD_FAILURE() << "no error for invalid UTF-8 at " << at;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("invalid UTF-8 at byte " + std::to_string(at)),
                std::string::npos) << e.what();
    }
  }
  // Ids beyond the vocabulary (padded embedding rows) decode to nothing.
  EXPECT_EQ(tok->decode({12092, 1 << 20, -1}), "Hello");
  EXPECT_EQ(tok->token_text(50300), "[50300?]");
}

TEST(TokenizerLoad, EmptyFolderGivesNull) {
  const std::string dir = temp_dir("tok-empty");
  auto r = load_tokenizer(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value(), nullptr);
  auto missing = load_tokenizer(dir + "/nope");
  EXPECT_FALSE(missing.ok());
}

TEST(TokenizerLoad, MalformedTokenizerJsonNamesTheFile) {
  const std::string dir = temp_dir("tok-bad");
  const std::string path = dir + "/tokenizer.json";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {"{\"added_tokens\": []}", "model"},
      {R"({"model": {"type": "Unigram", "vocab": []}})", "Unigram"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]},
          "pre_tokenizer": {"type": "ByteLevel"}})", "'c' is not in the vocabulary"},
      {R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []},
          "pre_tokenizer": {"type": "ByteLevel"}})", "vocab id of 'a' must be an integer from 0 to 2147483647, got \"zero\""},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
          "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}},
          "decoder": {"type": "ByteLevel"}})", "regex /(unclosed/"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
          "pre_tokenizer": {"type": "Whitespace"}})", "not supported"},
  };
  for (const auto& [text, what] : bad) {
    write_file(path, text);
    for (int via_dir = 0; via_dir < 2; ++via_dir) {
      auto r = via_dir ? load_tokenizer(dir) : load_tokenizer_json(path);
      ASSERT_FALSE(r.ok()) << text;
      EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
      EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
      EXPECT_NE(r.error().message.find(what), std::string::npos) << r.error().message;
    }
  }
}

TEST(TokenizerLoad, MalformedOtherFilesNameTheFile) {
  const std::string dir = temp_dir("tok-bad2");
  write_file(dir + "/vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  write_file(dir + "/merges.txt", "#version: 0.2\na b\nabc\n");
  auto r = load_tokenizer(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(dir + "/merges.txt: line 3"), std::string::npos)
      << r.error().message;
  write_file(dir + "/merges.txt", "a b\n");
  write_file(dir + "/tokenizer_config.json", "{\"bos_token\": ");
  r = load_tokenizer(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(dir + "/tokenizer_config.json"), std::string::npos);
  const std::string spm_dir = temp_dir("tok-bad3");
  write_file(spm_dir + "/tokenizer.model", "this is not a protobuf");
  r = load_tokenizer(spm_dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
  EXPECT_NE(r.error().message.find(spm_dir + "/tokenizer.model"), std::string::npos);
}

// A byte-level vocabulary: the 256 byte characters (ids 0..255) plus the given merges' results.
json byte_level_model(const std::vector<std::pair<std::string, std::string>>& merges) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8_append(ch, byte_to_unicode(static_cast<uint8_t>(b)));
    vocab[ch] = b;
  }
  json merge_list = json::array();
  int next = 256;
  for (const auto& [a, b] : merges) {
    vocab[a + b] = next++;
    merge_list.push_back(json::array({a, b}));  // the newer ["a", "b"] form
  }
  return {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}, {"ignore_merges", true}};
}

// Llama 3's layout: Sequence[Split(regex), ByteLevel(use_regex false)], TemplateProcessing BOS.
TEST(TokenizerHandMade, Llama3StyleByteLevel) {
  const std::string dir = temp_dir("tok-llama3");
  // "\xC4\xA0" (Ġ) is the byte-level spelling of ' '. Merges, by rank, give the ids
  // 256 "he", 257 "Ġt", 258 "Ġthe", 259 "11".
  const std::string g = "\xC4\xA0";
  json doc;
  doc["model"] = byte_level_model({{"h", "e"}, {g, "t"}, {g + "t", "he"}, {"1", "1"}});
  const std::string pattern =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  doc["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({
      {{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"},
       {"invert", false}},
      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
       {"use_regex", false}}})}};
  doc["decoder"] = {{"type", "ByteLevel"}};
  doc["added_tokens"] = json::array({
      {{"id", 300}, {"content", "<|begin_of_text|>"}, {"special", true}, {"normalized", false}},
      {{"id", 301}, {"content", "<|eot_id|>"}, {"special", true}, {"normalized", false}},
      {{"id", 302}, {"content", "<tool>"}, {"special", false}, {"normalized", false},
       {"lstrip", true}, {"rstrip", true}}});
  doc["post_processor"] = {{"type", "Sequence"}, {"processors", json::array({
      {{"type", "ByteLevel"}},
      {{"type", "TemplateProcessing"},
       {"single", json::array({{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                               {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
       {"special_tokens", {{"<|begin_of_text|>", {{"id", "<|begin_of_text|>"}, {"ids", {300}},
                                                  {"tokens", {"<|begin_of_text|>"}}}}}}}})}};
  write_file(dir + "/tokenizer.json", doc.dump());
  write_file(dir + "/generation_config.json", R"({"bos_token_id": 300, "eos_token_id": [301, 300]})");
  auto tok = must(load_tokenizer(dir));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->special().bos, 300);
  EXPECT_EQ(tok->special().eos, 301);
  EXPECT_TRUE(tok->special().add_bos);
  // "the the": words "the", " the" -> t h e -> t(116) he(256); Ġthe(258) as a whole.
  EXPECT_EQ(show_ids(tok->encode("the the")), "300 116 256 258");
  // Llama 3's pattern groups digits by three: "1111" -> "111" "1" -> 11(259) 1(49), 1(49).
  EXPECT_EQ(show_ids(tok->encode("1111", false)), "259 49 49");
  // The added token swallows the spaces around it (lstrip / rstrip).
  EXPECT_EQ(show_ids(tok->encode("a <tool> b", false)), "97 302 98");
  EXPECT_EQ(show_ids(tok->encode("<|eot_id|>", false, true)), "301");
  EXPECT_EQ(tok->decode(tok->encode("the the 1111 \xC3\xA9\xF0\x9F\x98\x80", false)),
            "the the 1111 \xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(tok->token_text(258), " the");
}

// Mistral's layout: Metaspace pre-tokenizer, BPE with byte_fallback, special_tokens_map and
// tokenizer_config ({"content": ...} objects) for the special tokens.
TEST(TokenizerHandMade, MetaspaceByteFallback) {
  const std::string dir = temp_dir("tok-mistral");
  const std::string u = "\xE2\x96\x81";  // ▁
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  // 259 ▁ 260 h 261 e 262 l 263 o 264 ▁h 265 ll 266 ▁he 267 llo 268 ▁hello 269 ▁▁
  const std::vector<std::string> pieces = {u, "h", "e", "l", "o", u + "h", "ll", u + "he",
                                           "llo", u + "hello", u + u};
  for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = 259 + static_cast<int>(i);
  const json merges = {u + " h", "l l", u + "h e", "ll o", u + "he llo", u + " " + u};
  json doc;
  doc["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"byte_fallback", true},
                  {"unk_token", "<unk>"}, {"fuse_unk", true}};
  doc["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", u}, {"prepend_scheme", "first"},
                          {"split", false}};
  doc["decoder"] = {{"type", "Metaspace"}, {"replacement", u}, {"prepend_scheme", "first"},
                    {"split", false}};
  doc["added_tokens"] = json::array({
      {{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
      {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
      {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}});
  write_file(dir + "/tokenizer.json", doc.dump());
  write_file(dir + "/special_tokens_map.json",
             R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"})");
  write_file(dir + "/tokenizer_config.json",
             R"({"add_bos_token": true, "add_eos_token": true, "unk_token": "<unk>"})");
  auto tok = must(load_tokenizer(dir));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->special().bos, 1);
  EXPECT_EQ(tok->special().eos, 2);
  EXPECT_EQ(tok->special().unk, 0);
  // "hello": ▁hello -> merges ▁h, ll, ▁he, llo, ▁hello -> 268, plus BOS and EOS.
  EXPECT_EQ(show_ids(tok->encode("hello")), "1 268 2");
  // "hello  hel": ▁hello▁▁hel. "▁ h" outranks "▁ ▁", so the second ▁ joins h first:
  // ▁hello(268) ▁(259) ▁he(266) l(262).
  EXPECT_EQ(show_ids(tok->encode("hello  hel", false)), "268 259 266 262");
  // "é" is not a piece: its UTF-8 bytes C3 A9 as byte pieces 3 + 0xC3, 3 + 0xA9.
  EXPECT_EQ(show_ids(tok->encode("\xC3\xA9", false)), "259 198 172");
  EXPECT_EQ(tok->decode({259, 198, 172}), "\xC3\xA9");
  EXPECT_EQ(tok->decode(tok->encode("hello  hel \xC3\xA9"), true), "hello  hel \xC3\xA9");
  EXPECT_EQ(tok->token_text(198), "<0xC3>");
  EXPECT_EQ(tok->token_text(268), " hello");
}

TEST(TokenizerHandMade, GgufModelsRefusedOrChecked) {
  GgufVocab v;
  v.model = "bert";
  v.tokens = {"a"};
  auto r = tokenizer_from_gguf_vocab(v);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("bert"), std::string::npos);
  v.model = "llama";  // scores missing
  r = tokenizer_from_gguf_vocab(v);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("scores"), std::string::npos);
}

}  // namespace
}  // namespace ms::test
