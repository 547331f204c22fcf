// Byte-level BPE (GPT-2, GPT-NeoX/Pythia, Llama 3, Qwen2): the text's bytes are spelled in
// GPT-2's printable byte alphabet, split into words by the pre-tokenizer, and each word is
// merged by rank. Private to core; built by the tokenizer.json, vocab.json and GGUF loaders.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/tokenizer/tokenizer_base.h"
#include "core/tokenizer/tokenizer_text.h"

namespace ms {

struct ByteLevelBpeModel {
  std::vector<std::string> vocab;  // id -> token in the byte-level alphabet ("" for unused ids)
  std::vector<std::pair<std::string, std::string>> merges;  // first merges first
  bool ignore_merges = false;  // a word that is a token as a whole is not merged (Llama 3)
  int32_t unk = -1;            // for bytes the vocabulary lacks (they are dropped when -1)
};

class ByteLevelBpeTokenizer : public BaseTokenizer {
 public:
  // Throws InputError when a merge names a token the vocabulary lacks.
  ByteLevelBpeTokenizer(ByteLevelBpeModel model, Normalizer normalizer, PreTokenizer pre_tokenizer);

 protected:
  std::string normalize(std::string_view text) const override;
  void encode_fragment(std::string_view text, bool at_start, std::vector<int32_t>& out) const override;
  std::string decode_run(const int32_t* ids, size_t n, bool at_start) const override;
  std::string model_token_text(int32_t id) const override;
  int32_t model_vocab_size() const override { return static_cast<int32_t>(m_tokens.size()); }
  int32_t model_token_id(std::string_view token) const override;

 private:
  void encode_word(const std::string& word, std::vector<int32_t>& out) const;

  std::vector<std::string> m_tokens;  // id -> byte-level spelling
  std::vector<std::string> m_bytes;   // id -> the raw bytes it stands for
  std::unordered_map<std::string, int32_t> m_ids;  // byte-level spelling -> id
  std::array<int32_t, 256> m_byte_ids{};           // byte -> id of its one-character token
  MergeTable m_merges;
  bool m_ignore_merges;
  int32_t m_unk;
  Normalizer m_normalizer;
  PreTokenizer m_pre;

  // Word -> ids. Words repeat a lot in real text; the cache is cleared when it grows large.
  mutable std::mutex m_cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> m_cache;
};

}  // namespace ms
