// Byte-level BPE: vocabulary and merge table set-up, per-word merging with a word cache, and
// decoding through the inverse byte map.
#include "core/tokenizer/tokenizer_bpe.h"

#include "core/tokenizer/unicode.h"

namespace ms {
namespace {

constexpr size_t kMaxCachedWord = 256;     // bytes; longer words are merged every time
constexpr size_t kMaxCacheEntries = 1 << 17;

}  // namespace

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(ByteLevelBpeModel model, Normalizer normalizer,
                                             PreTokenizer pre_tokenizer)
    : m_tokens(std::move(model.vocab)),
      m_ignore_merges(model.ignore_merges),
      m_unk(model.unk),
      m_normalizer(std::move(normalizer)),
      m_pre(std::move(pre_tokenizer)) {
  m_bytes.resize(m_tokens.size());
  m_ids.reserve(m_tokens.size());
  for (size_t i = 0; i < m_tokens.size(); ++i) {
    if (m_tokens[i].empty()) continue;
    m_ids.emplace(m_tokens[i], static_cast<int32_t>(i));
    m_bytes[i] = byte_level_decode(m_tokens[i]);
  }
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8_append(ch, byte_to_unicode(static_cast<uint8_t>(b)));
    auto it = m_ids.find(ch);
    m_byte_ids[b] = it == m_ids.end() ? -1 : it->second;
  }
  m_merges.reserve(model.merges.size());
  auto id_of = [&](const std::string& token, size_t rank, const char* what) {
    auto it = m_ids.find(token);
    if (it == m_ids.end())
      fail_input("merge " + std::to_string(rank + 1) + " (" + model.merges[rank].first + " " +
                 model.merges[rank].second + "): " + what + " '" + token +
                 "' is not in the vocabulary");
    return it->second;
  };
  for (size_t r = 0; r < model.merges.size(); ++r) {
    const auto& [a, b] = model.merges[r];
    const int32_t left = id_of(a, r, "token");
    const int32_t right = id_of(b, r, "token");
    const int32_t merged = id_of(a + b, r, "merged token");
    m_merges.add(left, right, static_cast<int32_t>(r), merged);
  }
}

std::string ByteLevelBpeTokenizer::normalize(std::string_view text) const {
  return m_normalizer.empty() ? std::string(text) : m_normalizer.run(text);
}

void ByteLevelBpeTokenizer::encode_fragment(std::string_view text, bool at_start,
                                            std::vector<int32_t>& out) const {
  std::vector<std::string> words;
  if (m_pre.empty()) {
    if (!text.empty()) words.emplace_back(text);
  } else {
    m_pre.run(text, at_start, words);
  }
  for (const std::string& w : words) encode_word(w, out);
}

void ByteLevelBpeTokenizer::encode_word(const std::string& word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= kMaxCachedWord;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(m_cache_mutex);
    auto it = m_cache.find(word);
    if (it != m_cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  if (m_ignore_merges) {
    auto it = m_ids.find(byte_level_encode(word));
    if (it != m_ids.end()) ids.push_back(it->second);
  }
  if (ids.empty()) {
    ids.reserve(word.size());
    for (unsigned char b : word) {
      const int32_t id = m_byte_ids[b];
      if (id >= 0) ids.push_back(id);
      else if (m_unk >= 0) ids.push_back(m_unk);
    }
    bpe_merge(ids, m_merges);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(m_cache_mutex);
    if (m_cache.size() >= kMaxCacheEntries) m_cache.clear();
    m_cache.emplace(word, std::move(ids));
  }
}

std::string ByteLevelBpeTokenizer::decode_run(const int32_t* ids, size_t n, bool) const {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = ids[i];
    if (id >= 0 && id < static_cast<int32_t>(m_bytes.size())) out += m_bytes[id];
  }
  return out;
}

std::string ByteLevelBpeTokenizer::model_token_text(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(m_bytes.size())) return "";
  return escape_invalid_utf8(m_bytes[id]);
}

int32_t ByteLevelBpeTokenizer::model_token_id(std::string_view token) const {
  auto it = m_ids.find(std::string(token));
  return it == m_ids.end() ? -1 : it->second;
}

}  // namespace ms
