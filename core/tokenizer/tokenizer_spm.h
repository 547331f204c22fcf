// SentencePiece-style BPE with byte fallback (Llama 2, Mistral, and GGUF "llama" vocabularies):
// spaces become "▁", characters are merged by piece score (GGUF, like llama.cpp's
// llm_tokenizer_spm) or by merge rank (tokenizer.json), and characters the vocabulary lacks are
// spelled as <0xXX> byte tokens. Private to core.
#pragma once

#include <array>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/tokenizer/tokenizer_base.h"
#include "core/tokenizer/tokenizer_text.h"

namespace ms {

extern const char* const kSpmSpace;  // "▁" (U+2581)

struct SpmBpeModel {
  std::vector<std::string> pieces;  // id -> piece, spaces written as "▁"
  std::vector<float> scores;        // merge priority (higher first) when merges is empty
  // GGUF token types (1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte); empty:
  // every piece may be produced by merging and byte pieces are found by their <0xXX> spelling.
  std::vector<int32_t> types;
  std::vector<std::pair<std::string, std::string>> merges;  // tokenizer.json ranks, first first
  bool byte_fallback = true;  // unknown characters as <0xXX> pieces (else as unk)
  int32_t unk = -1;
  bool fuse_unk = false;      // consecutive unknown characters give one unk
  std::string replacement = kSpmSpace;
  bool strip_leading_space = true;  // decode drops the dummy-prefix space at the very start
};

class SpmBpeTokenizer : public BaseTokenizer {
 public:
  // normalizer: e.g. Prepend("▁") + Replace(" ", "▁"); pre_tokenizer: e.g. Metaspace or empty.
  // Throws InputError when a merge names a piece the vocabulary lacks.
  SpmBpeTokenizer(SpmBpeModel model, Normalizer normalizer, PreTokenizer pre_tokenizer);

 protected:
  std::string normalize(std::string_view text) const override;
  void encode_fragment(std::string_view text, bool at_start, std::vector<int32_t>& out) const override;
  std::string decode_run(const int32_t* ids, size_t n, bool at_start) const override;
  std::string model_token_text(int32_t id) const override;
  int32_t model_vocab_size() const override { return static_cast<int32_t>(m_pieces.size()); }
  int32_t model_token_id(std::string_view token) const override;

 private:
  void build_merges_from_scores(const std::vector<float>& scores);
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::vector<std::string> m_pieces;
  std::vector<int16_t> m_byte_of;       // id -> byte value of a <0xXX> piece, else -1
  std::array<int32_t, 256> m_byte_ids;  // byte -> id of its <0xXX> piece, else -1
  std::unordered_map<std::string, int32_t> m_ids;     // every piece -> id
  // Symbols BPE works on: pieces that merging may produce, plus characters that occur only
  // inside pieces (ids from m_pieces.size() up, never output).
  std::unordered_map<std::string, int32_t> m_symbols;
  MergeTable m_merges;
  bool m_byte_fallback;
  int32_t m_unk;
  bool m_fuse_unk;
  std::string m_replacement;
  bool m_strip_leading_space;
  Normalizer m_normalizer;
  PreTokenizer m_pre;
};

}  // namespace ms
