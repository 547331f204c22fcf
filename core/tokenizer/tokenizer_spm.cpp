// SentencePiece-style BPE: the symbol and merge tables (from piece scores or from merge ranks),
// per-fragment merging with byte fallback, and decoding with "▁" as space.
#include "core/tokenizer/tokenizer_spm.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/tokenizer/unicode.h"

namespace ms {

const char* const kSpmSpace = "\xE2\x96\x81";

namespace {

// The byte a "<0xXX>" piece stands for, or -1.
int parse_byte_piece(const std::string& p) {
  if (p.size() != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = p[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

}  // namespace

SpmBpeTokenizer::SpmBpeTokenizer(SpmBpeModel model, Normalizer normalizer, PreTokenizer pre_tokenizer)
    : m_pieces(std::move(model.pieces)),
      m_byte_fallback(model.byte_fallback),
      m_unk(model.unk),
      m_fuse_unk(model.fuse_unk),
      m_replacement(std::move(model.replacement)),
      m_strip_leading_space(model.strip_leading_space),
      m_normalizer(std::move(normalizer)),
      m_pre(std::move(pre_tokenizer)) {
  const size_t n = m_pieces.size();
  const bool typed = model.types.size() == n;
  m_byte_of.assign(n, -1);
  m_byte_ids.fill(-1);
  m_ids.reserve(n);
  m_symbols.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = m_pieces[i];
    if (p.empty()) continue;
    const auto id = static_cast<int32_t>(i);
    m_ids.emplace(p, id);
    const int type = typed ? model.types[i] : 1;
    const int byte = (typed && type != 6) ? -1 : parse_byte_piece(p);
    if (byte >= 0) {
      m_byte_of[i] = static_cast<int16_t>(byte);
      if (m_byte_ids[byte] < 0) m_byte_ids[byte] = id;
      if (typed) continue;
    }
    if (type == 1 || type == 4) m_symbols.emplace(p, id);
  }
  if (!model.merges.empty()) {
    m_merges.reserve(model.merges.size());
    for (size_t r = 0; r < model.merges.size(); ++r) {
      const std::string& a = model.merges[r].first;  // not a structured binding: the lambda
      const std::string& b = model.merges[r].second;  // captures them (clang 14 refuses bindings)
      auto find = [&](const std::string& s) {
        auto it = m_symbols.find(s);
        if (it == m_symbols.end())
          fail_input("merge " + std::to_string(r + 1) + " (" + a + " " + b + "): '" + s +
                     "' is not in the vocabulary");
        return it->second;
      };
      m_merges.add(find(a), find(b), static_cast<int32_t>(r), find(a + b));
    }
  } else {
    if (model.scores.size() != n)
      fail_input("the vocabulary has " + std::to_string(n) + " pieces but " +
                 std::to_string(model.scores.size()) + " scores");
    build_merges_from_scores(model.scores);
  }
}

void SpmBpeTokenizer::build_merges_from_scores(const std::vector<float>& scores) {
  // Every way a piece splits into two symbols is a merge; rank = place in descending score
  // order (equal scores share a rank, then the leftmost pair merges first, as SentencePiece).
  std::vector<int32_t> order;
  for (const auto& [piece, id] : m_symbols)
    if (utf8_seq_len(static_cast<unsigned char>(piece[0])) < piece.size()) order.push_back(id);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return scores[a] != scores[b] ? scores[a] > scores[b] : a < b;
  });
  auto next_virtual = static_cast<int32_t>(m_pieces.size());
  auto symbol = [&](const std::string& s) -> int32_t {
    auto it = m_symbols.find(s);
    if (it != m_symbols.end()) return it->second;
    if (utf8_seq_len(static_cast<unsigned char>(s[0])) != s.size()) return -1;
    m_symbols.emplace(s, next_virtual);  // a character that is not a piece of its own
    return next_virtual++;
  };
  m_merges.reserve(order.size() * 4);
  int32_t rank = -1;
  for (size_t k = 0; k < order.size(); ++k) {
    const int32_t id = order[k];
    if (k == 0 || scores[id] != scores[order[k - 1]]) ++rank;
    const std::string p = m_pieces[id];
    size_t cut = utf8_seq_len(static_cast<unsigned char>(p[0]));
    while (cut < p.size()) {
      const int32_t left = symbol(p.substr(0, cut));
      const int32_t right = symbol(p.substr(cut));
      if (left >= 0 && right >= 0) m_merges.add(left, right, rank, id);
      cut += utf8_seq_len(static_cast<unsigned char>(p[cut]));
    }
  }
}

std::string SpmBpeTokenizer::normalize(std::string_view text) const {
  return m_normalizer.empty() ? std::string(text) : m_normalizer.run(text);
}

void SpmBpeTokenizer::encode_fragment(std::string_view text, bool at_start,
                                      std::vector<int32_t>& out) const {
  if (m_pre.empty()) {
    encode_word(text, out);
    return;
  }
  std::vector<std::string> words;
  m_pre.run(text, at_start, words);
  for (const std::string& w : words) encode_word(w, out);
}

void SpmBpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  std::vector<int32_t> syms;
  std::vector<uint32_t> starts;  // byte offset of each character
  syms.reserve(word.size());
  starts.reserve(word.size() + 1);
  std::string ch;
  for (size_t pos = 0; pos < word.size();) {
    const size_t len = utf8_seq_len(static_cast<unsigned char>(word[pos]));
    ch.assign(word.substr(pos, len));
    auto it = m_symbols.find(ch);
    syms.push_back(it == m_symbols.end() ? -1 : it->second);
    starts.push_back(static_cast<uint32_t>(pos));
    pos += len;
  }
  starts.push_back(static_cast<uint32_t>(word.size()));
  std::vector<uint32_t> widths;
  bpe_merge(syms, m_merges, &widths);
  const auto n_pieces = static_cast<int32_t>(m_pieces.size());
  bool last_unk = false;
  size_t c = 0;  // character index where the current symbol starts
  for (size_t k = 0; k < syms.size(); ++k) {
    const int32_t id = syms[k];
    const size_t b = starts[c], e = starts[c + widths[k]];
    c += widths[k];
    if (id >= 0 && id < n_pieces) {
      out.push_back(id);
      last_unk = false;
      continue;
    }
    // A character the vocabulary lacks: its bytes as <0xXX> pieces, else unk.
    bool bytes_ok = m_byte_fallback;
    for (size_t i = b; i < e && bytes_ok; ++i)
      bytes_ok = m_byte_ids[static_cast<unsigned char>(word[i])] >= 0;
    if (bytes_ok) {
      for (size_t i = b; i < e; ++i) out.push_back(m_byte_ids[static_cast<unsigned char>(word[i])]);
      last_unk = false;
    } else if (m_unk >= 0 && !(m_fuse_unk && last_unk)) {
      out.push_back(m_unk);
      last_unk = true;
    }
  }
}

std::string SpmBpeTokenizer::decode_run(const int32_t* ids, size_t n, bool at_start) const {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= static_cast<int32_t>(m_pieces.size())) continue;
    if (m_byte_of[id] >= 0) {
      out += static_cast<char>(m_byte_of[id]);
      continue;
    }
    const std::string& p = m_pieces[id];
    size_t pos = 0;
    while (pos < p.size()) {
      if (!m_replacement.empty() && p.compare(pos, m_replacement.size(), m_replacement) == 0) {
        out += ' ';
        pos += m_replacement.size();
      } else {
        out += p[pos++];
      }
    }
  }
  if (at_start && m_strip_leading_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

std::string SpmBpeTokenizer::model_token_text(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(m_pieces.size())) return "";
  if (m_byte_of[id] >= 0) return m_pieces[id];
  std::string out;
  const std::string& p = m_pieces[id];
  for (size_t pos = 0; pos < p.size();) {
    if (!m_replacement.empty() && p.compare(pos, m_replacement.size(), m_replacement) == 0) {
      out += ' ';
      pos += m_replacement.size();
    } else {
      out += p[pos++];
    }
  }
  return escape_invalid_utf8(out);
}

int32_t SpmBpeTokenizer::model_token_id(std::string_view token) const {
  auto it = m_ids.find(std::string(token));
  return it == m_ids.end() ? -1 : it->second;
}

}  // namespace ms
