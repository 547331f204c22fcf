// Test helpers for the tokenizer tests: readers for the published test vectors in
// ../shared/reference (llama.cpp .inp/.out pairs, JSON case lists) and builders that turn the
// reference tokenizers into GGUF vocabularies and tokenizer.json documents independently.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tokenizer/sentencepiece_proto.h"
#include "core/tokenizer/tokenizer.h"
#include "tests/support/test_support.h"

namespace ms::test {

struct TokCase {
  std::string text;
  std::vector<int32_t> ids;
};

inline std::string ref_path(const std::string& rel) { return reference_dir() + "/" + rel; }

// llama.cpp's test-tokenizer-0 format: inputs separated by "\n__ggml_vocab_test__\n" (the file
// ends with one), expected ids one line per input, space separated.
inline std::vector<TokCase> read_llamacpp_vectors(const std::string& vocab_name) {
  const std::string base = ref_path("llamacpp-tokenizer-tests/ggml-vocab-" + vocab_name + ".gguf");
  const std::string raw = read_file(base + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::istringstream out(read_file(base + ".out"));
  std::vector<TokCase> cases;
  std::string line;
  for (size_t i = 0; std::getline(out, line); ++i) {
    TokCase c;
    c.text = i < inputs.size() ? inputs[i] : "";
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(inputs.size(), cases.size()) << base;
  return cases;
}

// {"cases": [{"text": ..., "ids": [...]}, ...]}
inline std::vector<TokCase> read_json_vectors(const std::string& rel) {
  const auto doc = nlohmann::json::parse(read_file(ref_path(rel)));
  std::vector<TokCase> cases;
  for (const auto& c : doc.at("cases"))
    cases.push_back({c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>()});
  return cases;
}

inline std::string show_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

// Checks every case; returns how many matched.
inline int expect_cases(const Tokenizer& tok, const std::vector<TokCase>& cases, bool add_special,
                        bool parse_special, const std::string& label) {
  int passed = 0;
  for (const TokCase& c : cases) {
    const std::vector<int32_t> got = tok.encode(c.text, add_special, parse_special);
    EXPECT_EQ(show_ids(got), show_ids(c.ids)) << label << ": input '" << c.text << "'";
    passed += got == c.ids;
  }
  return passed;
}

// A tokenizer.model's pieces, scores and types (read with core's ModelProto reader; the
// sentencepiece library cannot share a process with LibTorch) as GGUF carries them.
inline SentencePieceModel read_sentencepiece(const std::string& model_path) {
  auto r = read_spm_proto(model_path);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? r.value() : SentencePieceModel{};
}

inline GgufVocab gguf_vocab_from_sentencepiece(const std::string& model_path) {
  const SentencePieceModel sp = read_sentencepiece(model_path);
  GgufVocab v;
  v.model = "llama";
  v.pre = "default";
  v.tokens = sp.pieces;
  v.scores = sp.scores;
  v.token_types = sp.types;
  v.special.bos = sp.bos_id;
  v.special.eos = sp.eos_id;
  v.special.unk = sp.unk_id;
  v.special.add_bos = true;
  v.add_space_prefix = sp.add_dummy_prefix;
  return v;
}

// A Llama-2-style Hugging Face tokenizer.json built from the same tokenizer.model: every split of
// a normal piece into two pieces is a merge, ordered by the merged piece's score (then by the
// pieces' ids), which is how Hugging Face's converter derives them.
// metaspace false: normalizer Prepend("▁") + Replace(" ", "▁"), decoder ... Strip (Llama 2).
// metaspace true: Metaspace pre-tokenizer with prepend_scheme "first", split false (Mistral).
inline std::string hf_json_from_sentencepiece(const std::string& model_path, bool metaspace) {
  using nlohmann::json;
  const SentencePieceModel sp = read_sentencepiece(model_path);
  const std::string kSp = "\xE2\x96\x81";
  json vocab = json::object();
  std::map<std::string, int> ids;  // normal pieces, the ones merges may produce
  for (size_t i = 0; i < sp.pieces.size(); ++i) {
    vocab[sp.pieces[i]] = i;
    if (sp.types[i] == 1) ids[sp.pieces[i]] = static_cast<int>(i);
  }
  struct M { float score; int merged, a, b; std::string left, right; };
  std::vector<M> merges;
  for (const auto& [piece, id] : ids) {
    for (size_t cut = 1; cut < piece.size(); ++cut) {
      if ((static_cast<unsigned char>(piece[cut]) & 0xC0) == 0x80) continue;
      auto l = ids.find(piece.substr(0, cut)), r = ids.find(piece.substr(cut));
      if (l == ids.end() || r == ids.end()) continue;
      merges.push_back({sp.scores[id], id, l->second, r->second, l->first, r->first});
    }
  }
  std::sort(merges.begin(), merges.end(), [](const M& x, const M& y) {
    if (x.score != y.score) return x.score > y.score;
    if (x.merged != y.merged) return x.merged < y.merged;
    return std::make_pair(x.a, x.b) < std::make_pair(y.a, y.b);
  });
  json merge_list = json::array();
  for (const M& m : merges) merge_list.push_back(m.left + " " + m.right);
  json added = json::array();
  for (int i : {sp.unk_id, sp.bos_id, sp.eos_id})
    added.push_back({{"id", i}, {"content", sp.pieces[i]}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                     {"special", true}});
  json doc;
  doc["version"] = "1.0";
  doc["added_tokens"] = added;
  if (metaspace) {
    doc["normalizer"] = nullptr;
    doc["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kSp},
                            {"prepend_scheme", "first"}, {"split", false}};
    doc["decoder"] = {{"type", "Metaspace"}, {"replacement", kSp},
                      {"prepend_scheme", "first"}, {"split", false}};
  } else {
    doc["normalizer"] = {{"type", "Sequence"}, {"normalizers", json::array({
        {{"type", "Prepend"}, {"prepend", kSp}},
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSp}}})}};
    doc["pre_tokenizer"] = nullptr;
    doc["decoder"] = {{"type", "Sequence"}, {"decoders", json::array({
        {{"type", "Replace"}, {"pattern", {{"String", kSp}}}, {"content", " "}},
        {{"type", "ByteFallback"}}, {{"type", "Fuse"}},
        {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  }
  doc["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {sp.bos_id}}, {"tokens", {"<s>"}}}}}}};
  doc["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"},
                  {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                  {"fuse_unk", true}, {"byte_fallback", true}, {"vocab", vocab},
                  {"merges", merge_list}};
  return doc.dump();
}

// GPT-2's encoder.json + vocab.bpe as a GGUF "gpt2" vocabulary.
inline GgufVocab gguf_vocab_from_gpt2_files() {
  const auto enc = nlohmann::json::parse(read_file(ref_path("gpt2-tokenizer/encoder.json")));
  GgufVocab v;
  v.model = "gpt2";
  v.pre = "gpt-2";
  v.tokens.resize(enc.size());
  for (const auto& [token, id] : enc.items()) v.tokens[id.get<size_t>()] = token;
  v.token_types.assign(v.tokens.size(), 1);
  std::istringstream lines(read_file(ref_path("gpt2-tokenizer/vocab.bpe")));
  std::string line;
  for (int n = 0; std::getline(lines, line); ++n)
    if (!line.empty() && !(n == 0 && line.rfind("#version", 0) == 0)) v.merges.push_back(line);
  const int eot = enc.at("<|endoftext|>").get<int>();
  v.token_types[eot] = 3;
  v.special.bos = v.special.eos = eot;
  v.add_space_prefix = false;
  return v;
}

}  // namespace ms::test
