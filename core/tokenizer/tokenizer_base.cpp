// The shared tokenizer machinery: added-token splitting, BOS/EOS, decoding around added tokens,
// token ids by text, and the heap-based BPE merge loop every model here uses.
#include "core/tokenizer/tokenizer_base.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <queue>
#include <set>
#include <unordered_map>

#include "core/tokenizer/unicode.h"

namespace ms {
namespace {

// The code point that ends just before byte offset pos (text valid UTF-8, pos > 0).
uint32_t cp_before(std::string_view text, size_t& pos) {
  size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  size_t p = start;
  const uint32_t cp = utf8_next(text, p);
  pos = start;
  return cp;
}

}  // namespace

// ---- BPE ----

void MergeTable::add(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  auto [it, inserted] = m_map.try_emplace(key(left, right), Entry{rank, merged});
  if (!inserted && rank < it->second.rank) it->second = Entry{rank, merged};
}

void bpe_merge(std::vector<int32_t>& symbols, const MergeTable& merges,
               std::vector<uint32_t>* widths) {
  const size_t n = symbols.size();
  if (widths) widths->assign(n, 1);
  if (n < 2) return;
  constexpr int32_t kGone = std::numeric_limits<int32_t>::min();
  struct Node {
    int32_t id, prev, next;
    uint32_t width;
  };
  struct Cand {
    int32_t rank, pos, left, right, merged;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Node> nodes(n);
  for (size_t i = 0; i < n; ++i)
    nodes[i] = {symbols[i], static_cast<int32_t>(i) - 1,
                i + 1 < n ? static_cast<int32_t>(i + 1) : -1, 1};
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int32_t l) {
    const int32_t r = nodes[l].next;
    if (r < 0) return;
    if (const MergeTable::Entry* e = merges.find(nodes[l].id, nodes[r].id))
      heap.push({e->rank, l, nodes[l].id, nodes[r].id, e->id});
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(static_cast<int32_t>(i));
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Node& left = nodes[c.pos];
    if (left.id != c.left || left.next < 0) continue;
    Node& right = nodes[left.next];
    if (right.id != c.right) continue;
    left.id = c.merged;
    left.width += right.width;
    right.id = kGone;
    left.next = right.next;
    if (left.next >= 0) nodes[left.next].prev = c.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(c.pos);
  }
  size_t k = 0;
  for (int32_t i = 0; i >= 0; i = nodes[i].next) {
    symbols[k] = nodes[i].id;
    if (widths) (*widths)[k] = nodes[i].width;
    ++k;
  }
  symbols.resize(k);
  if (widths) widths->resize(k);
}

// ---- added tokens ----

void BaseTokenizer::add_tokens(const std::vector<AddedToken>& tokens) {
  // A token with the id or the content of an earlier one replaces the first such one. Indexed by
  // id and by content (sets of positions), so a file of many added tokens costs n log n, not n^2.
  std::unordered_map<int32_t, std::set<size_t>> by_id;
  std::unordered_map<std::string, std::set<size_t>> by_content;
  for (size_t i = 0; i < m_added.size(); ++i) {
    by_id[m_added[i].id].insert(i);
    by_content[m_added[i].content].insert(i);
  }
  for (const AddedToken& t : tokens) {
    if (t.id < 0 || t.content.empty()) continue;
    if (t.id > (1 << 24))
      fail_input("added token '" + t.content + "' has id " + std::to_string(t.id) +
                 ", beyond the vocabulary limit 2^24");
    size_t same = m_added.size();
    if (auto it = by_id.find(t.id); it != by_id.end() && !it->second.empty())
      same = std::min(same, *it->second.begin());
    if (auto it = by_content.find(t.content); it != by_content.end() && !it->second.empty())
      same = std::min(same, *it->second.begin());
    if (same < m_added.size()) {
      by_id[m_added[same].id].erase(same);
      by_content[m_added[same].content].erase(same);
      m_added[same] = t;
    } else {
      m_added.push_back(t);
    }
    by_id[t.id].insert(same);
    by_content[t.content].insert(same);
  }
  rebuild_index();
}

void BaseTokenizer::rebuild_index() {
  m_added_by_id.clear();
  m_max_added_id = -1;
  for (auto& pass : m_by_first)
    for (auto& bucket : pass) bucket.clear();
  m_has_pass = {false, false};
  for (size_t i = 0; i < m_added.size(); ++i) {
    const AddedToken& t = m_added[i];
    m_added_by_id[t.id] = i;
    m_max_added_id = std::max(m_max_added_id, t.id);
    const int pass = t.normalized ? 1 : 0;
    m_by_first[pass][static_cast<unsigned char>(t.content[0])].push_back(static_cast<uint32_t>(i));
    m_has_pass[pass] = true;
  }
  for (auto& pass : m_by_first)
    for (auto& bucket : pass)
      std::stable_sort(bucket.begin(), bucket.end(), [&](uint32_t a, uint32_t b) {
        return m_added[a].content.size() > m_added[b].content.size();
      });
}

const AddedToken* BaseTokenizer::added_token(int32_t id) const {
  auto it = m_added_by_id.find(id);
  return it == m_added_by_id.end() ? nullptr : &m_added[it->second];
}

int32_t BaseTokenizer::token_id(std::string_view text) const {
  for (const AddedToken& t : m_added)
    if (t.content == text) return t.id;
  return model_token_id(text);
}

bool BaseTokenizer::is_special(int32_t id) const {
  if (const AddedToken* t = added_token(id)) return t->special;
  const SpecialTokens& s = special();
  return id >= 0 && (id == s.bos || id == s.eos || id == s.unk || id == s.pad);
}

void BaseTokenizer::split_added(std::string_view text, bool parse_special, bool normalized,
                                std::vector<Fragment>& out) const {
  const auto& buckets = m_by_first[normalized ? 1 : 0];
  size_t done = 0;  // text before this is in out
  size_t pos = 0;
  while (pos < text.size()) {
    const auto& bucket = buckets[static_cast<unsigned char>(text[pos])];
    const AddedToken* hit = nullptr;
    for (uint32_t idx : bucket) {
      const AddedToken& t = m_added[idx];
      if (t.special && !parse_special) continue;
      if (t.content.size() > text.size() - pos ||
          std::memcmp(text.data() + pos, t.content.data(), t.content.size()) != 0)
        continue;
      if (t.single_word) {
        size_t p = pos, q = pos + t.content.size();
        if (p > 0 && is_word_char(cp_before(text, p))) continue;
        if (q < text.size() && is_word_char(utf8_next(text, q))) continue;
      }
      hit = &t;
      break;
    }
    if (!hit) {
      pos += utf8_seq_len(static_cast<unsigned char>(text[pos]));
      continue;
    }
    size_t begin = pos, end = pos + hit->content.size();
    if (hit->lstrip) {
      while (begin > done) {
        size_t p = begin;
        if (!is_unicode_space(cp_before(text, p))) break;
        begin = p;
      }
    }
    if (hit->rstrip) {
      while (end < text.size()) {
        size_t q = end;
        if (!is_unicode_space(utf8_next(text, q))) break;
        end = q;
      }
    }
    if (begin > done) out.push_back({done, begin, -1});
    out.push_back({begin, end, hit->id});
    done = pos = end;
  }
  if (done < text.size()) out.push_back({done, text.size(), -1});
}

// ---- encode / decode ----

std::vector<int32_t> BaseTokenizer::encode(std::string_view text, bool add_special,
                                           bool parse_special) const {
  check_utf8(text);
  std::vector<int32_t> out;
  const SpecialTokens& s = special();
  if (add_special && s.add_bos && s.bos >= 0) out.push_back(s.bos);
  std::vector<Fragment> raw, norm;
  if (m_has_pass[0]) split_added(text, parse_special, false, raw);
  else if (!text.empty()) raw.push_back({0, text.size(), -1});
  for (const Fragment& f : raw) {
    if (f.id >= 0) {
      out.push_back(f.id);
      continue;
    }
    const std::string normalized = normalize(text.substr(f.begin, f.end - f.begin));
    if (!m_has_pass[1]) {
      encode_fragment(normalized, f.begin == 0, out);
      continue;
    }
    norm.clear();
    split_added(normalized, parse_special, true, norm);
    for (const Fragment& g : norm) {
      if (g.id >= 0) out.push_back(g.id);
      else encode_fragment(std::string_view(normalized).substr(g.begin, g.end - g.begin),
                           f.begin == 0 && g.begin == 0, out);
    }
  }
  if (add_special && s.add_eos && s.eos >= 0) out.push_back(s.eos);
  return out;
}

std::string BaseTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const int32_t n_vocab = vocab_size();
  std::string out;
  std::vector<int32_t> run;
  auto flush = [&] {
    if (run.empty()) return;
    out += decode_run(run.data(), run.size(), out.empty());
    run.clear();
  };
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab) continue;  // e.g. a model's padded embedding rows
    const AddedToken* t = added_token(id);
    const bool special = is_special(id);
    if (!t && !special) {
      run.push_back(id);
      continue;
    }
    flush();
    if (skip_special && special) continue;
    if (t) out += t->content;
    else out += decode_run(&id, 1, out.empty());
  }
  flush();
  return out;
}

std::string BaseTokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "[" + std::to_string(id) + "?]";
  if (const AddedToken* t = added_token(id)) return escape_invalid_utf8(t->content);
  return model_token_text(id);
}

int32_t BaseTokenizer::vocab_size() const { return std::max(model_vocab_size(), m_max_added_id + 1); }

}  // namespace ms
