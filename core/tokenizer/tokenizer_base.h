// What every mechscope tokenizer shares: added/special tokens split out of the text first
// (leftmost-longest, Hugging Face's special/lstrip/rstrip/normalized/single_word flags), BOS/EOS,
// decoding around added tokens, and the rank-ordered BPE merge loop. Private to core.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace ms {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = true;       // skipped by decode(skip_special); not parsed when !parse_special
  bool lstrip = false;       // swallows whitespace on its left
  bool rstrip = false;       // swallows whitespace on its right
  bool normalized = false;   // matched in normalized text rather than in the raw input
  bool single_word = false;  // only matched when no letter or digit touches it
};

// BPE merges keyed by the ids of the pair: rank (lower merges first) and the merged token.
class MergeTable {
 public:
  struct Entry {
    int32_t rank;
    int32_t id;
  };
  void reserve(size_t n) { m_map.reserve(n); }
  // Keeps the lowest rank when a pair is added twice.
  void add(int32_t left, int32_t right, int32_t rank, int32_t merged);
  const Entry* find(int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return nullptr;
    auto it = m_map.find(key(left, right));
    return it == m_map.end() ? nullptr : &it->second;
  }
  size_t size() const { return m_map.size(); }

 private:
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  std::unordered_map<uint64_t, Entry> m_map;
};

// Merges adjacent symbols, always the pair of lowest rank and the leftmost of equal ranks, until
// no adjacent pair is in the table (a heap over a linked list: O(n log n) for long words).
// Negative ids never merge. widths (optional) receives how many input symbols each output covers.
void bpe_merge(std::vector<int32_t>& symbols, const MergeTable& merges,
               std::vector<uint32_t>* widths = nullptr);

class BaseTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                              bool parse_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  std::string token_text(int32_t id) const override;
  int32_t vocab_size() const override;
  std::string kind() const override { return m_kind; }
  void set_kind(std::string kind) { m_kind = std::move(kind); }

  // Registers added tokens; one with the id or content of an earlier one replaces it.
  void add_tokens(const std::vector<AddedToken>& tokens);
  const AddedToken* added_token(int32_t id) const;
  const std::vector<AddedToken>& added_tokens() const { return m_added; }
  // The id of a token given as text: an added token's content, else the model's own spelling
  // (for byte-level BPE as written in vocab.json, e.g. "Ġthe"). -1 when there is none.
  int32_t token_id(std::string_view text) const;
  // True for added tokens marked special and for the BOS/EOS/UNK/PAD ids.
  bool is_special(int32_t id) const;

 protected:
  // Normalization of a text fragment between added tokens (before normalized added tokens are
  // matched). Identity unless a tokenizer has a normalizer.
  virtual std::string normalize(std::string_view text) const { return std::string(text); }
  // Model tokens for one normalized fragment; at_start: it begins the input text.
  virtual void encode_fragment(std::string_view text, bool at_start,
                               std::vector<int32_t>& out) const = 0;
  // Text of a run of model (non-added) tokens; at_start: nothing was decoded before them.
  virtual std::string decode_run(const int32_t* ids, size_t n, bool at_start) const = 0;
  virtual std::string model_token_text(int32_t id) const = 0;
  virtual int32_t model_vocab_size() const = 0;
  virtual int32_t model_token_id(std::string_view token) const = 0;

 private:
  struct Fragment {
    size_t begin, end;
    int32_t id;  // >= 0: an added token
  };
  // Splits text at added tokens of one kind (normalized or not), leftmost-longest.
  void split_added(std::string_view text, bool parse_special, bool normalized,
                   std::vector<Fragment>& out) const;
  void rebuild_index();

  std::string m_kind;
  std::vector<AddedToken> m_added;
  std::unordered_map<int32_t, size_t> m_added_by_id;
  // Indices into m_added by first byte, longest content first; [0] raw, [1] normalized pass.
  std::array<std::array<std::vector<uint32_t>, 256>, 2> m_by_first;
  std::array<bool, 2> m_has_pass{};
  int32_t m_max_added_id = -1;
};

}  // namespace ms
