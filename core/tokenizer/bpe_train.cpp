// Byte-level BPE training: word counts from GPT-2's pre-tokenizer, then repeated merging of the
// most frequent adjacent pair with incremental pair counts; and the tokenizer.json writer.
#include "core/tokenizer/bpe_train.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/tokenizer/tokenizer_text.h"
#include "core/tokenizer/unicode.h"

namespace ms {
namespace {

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

class PairCounts {
 public:
  void add_word(const Word& w, int64_t sign) {
    for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
      int64_t& c = m_counts[pair_key(w.symbols[i], w.symbols[i + 1])];
      c += sign * w.count;
      if (c == 0) m_counts.erase(pair_key(w.symbols[i], w.symbols[i + 1]));
    }
  }
  // The most frequent pair; ties to the smaller merged spelling, then the smaller ids.
  bool best(const std::vector<std::string>& vocab, int32_t& a, int32_t& b, int64_t& count) const {
    bool found = false;
    std::string best_text;
    for (const auto& [key, c] : m_counts) {
      const int32_t l = static_cast<int32_t>(key >> 32), r = static_cast<int32_t>(key & 0xffffffffu);
      if (found && c < count) continue;
      std::string text = vocab[static_cast<size_t>(l)] + vocab[static_cast<size_t>(r)];
      if (found && c == count && (text > best_text || (text == best_text && pair_key(l, r) > pair_key(a, b))))
        continue;
      found = true;
      a = l;
      b = r;
      count = c;
      best_text = std::move(text);
    }
    return found;
  }

 private:
  std::unordered_map<uint64_t, int64_t> m_counts;
};

bool merge_in(std::vector<int32_t>& s, int32_t a, int32_t b, int32_t merged) {
  bool changed = false;
  size_t out = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
      s[out++] = merged;
      ++i;
      changed = true;
    } else {
      s[out++] = s[i];
    }
  }
  s.resize(out);
  return changed;
}

bool contains_pair(const std::vector<int32_t>& s, int32_t a, int32_t b) {
  for (size_t i = 0; i + 1 < s.size(); ++i)
    if (s[i] == a && s[i + 1] == b) return true;
  return false;
}

}  // namespace

Result<BpeModel> train_bpe(const std::string& corpus, const BpeTrainOptions& opts) {
  return guard([&] {
    const int32_t n_special = static_cast<int32_t>(opts.special_tokens.size());
    if (opts.vocab_size < n_special + 256)
      fail_usage("BPE vocabulary of " + std::to_string(opts.vocab_size) + " is smaller than the " +
                 std::to_string(n_special + 256) + " special and byte tokens");
    check_utf8(corpus, "BPE corpus");
    BpeModel m;
    m.special = opts.special_tokens;
    m.vocab = m.special;
    for (int b = 0; b < 256; ++b) m.vocab.push_back(byte_level_encode(std::string(1, static_cast<char>(b))));

    // Word counts, in a fixed (sorted) order.
    PreTokenizer pre;
    pre.add_byte_level(false, true);
    std::map<std::string, int64_t> counts;
    std::vector<std::string> pieces;
    size_t begin = 0;
    while (begin < corpus.size()) {
      // Paragraph by paragraph keeps the regex input small; cutting between the two newlines of
      // "\n\n" splits the text exactly where GPT-2's pattern does.
      size_t end = corpus.find("\n\n", begin);
      end = end == std::string::npos ? corpus.size() : end + 1;
      pieces.clear();
      pre.run(std::string_view(corpus).substr(begin, end - begin), begin == 0, pieces);
      for (const std::string& p : pieces) ++counts[p];
      begin = end;
    }
    std::vector<Word> words;
    words.reserve(counts.size());
    for (const auto& [text, c] : counts) {
      Word w{{}, c};
      for (unsigned char ch : text) w.symbols.push_back(n_special + ch);
      words.push_back(std::move(w));
    }
    PairCounts pairs;
    for (const Word& w : words) pairs.add_word(w, 1);

    while (static_cast<int32_t>(m.vocab.size()) < opts.vocab_size) {
      int32_t a = 0, b = 0;
      int64_t c = 0;
      if (!pairs.best(m.vocab, a, b, c) || c < opts.min_frequency) break;
      const int32_t merged = static_cast<int32_t>(m.vocab.size());
      m.merges.emplace_back(m.vocab[static_cast<size_t>(a)], m.vocab[static_cast<size_t>(b)]);
      m.vocab.push_back(m.vocab[static_cast<size_t>(a)] + m.vocab[static_cast<size_t>(b)]);
      for (Word& w : words) {
        if (!contains_pair(w.symbols, a, b)) continue;
        pairs.add_word(w, -1);
        merge_in(w.symbols, a, b, merged);
        pairs.add_word(w, 1);
      }
    }
    return m;
  });
}

BpeModel ascii_bpe_model() {
  BpeModel m;
  m.special = {"<|endoftext|>"};
  m.vocab = m.special;
  for (int b = 1; b < 128; ++b) m.vocab.push_back(byte_level_encode(std::string(1, static_cast<char>(b))));
  return m;
}

std::string bpe_tokenizer_json(const BpeModel& m, bool add_bos) {
  using json = nlohmann::ordered_json;
  json added = json::array();
  for (size_t i = 0; i < m.special.size(); ++i)
    added.push_back({{"id", i}, {"content", m.special[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                     {"use_regex", true}};
  json post = byte_level;
  if (add_bos && !m.special.empty()) {
    const std::string& bos = m.special[0];
    json tok = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
    post = {{"type", "TemplateProcessing"},
            {"single", {tok, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair", {tok, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                      tok, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {0}}, {"tokens", {bos}}}}}}};
  }
  json vocab = json::object();
  for (size_t i = 0; i < m.vocab.size(); ++i) vocab[m.vocab[i]] = i;
  json merges = json::array();
  for (const auto& [a, b] : m.merges) merges.push_back(a + " " + b);
  json doc = {{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", nullptr},
              {"pre_tokenizer", byte_level},
              {"post_processor", post},
              {"decoder", byte_level},
              {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                         {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""},
                         {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
                         {"vocab", vocab}, {"merges", merges}}}};
  return doc.dump(1) + "\n";
}

}  // namespace ms
