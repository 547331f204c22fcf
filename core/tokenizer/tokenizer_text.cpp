// Normalizers and pre-tokenizers for the BPE tokenizers: Oniguruma regex splitting with Hugging
// Face's split behaviours, ByteLevel, Digits and Metaspace, and the normalizer chain.
#include "core/tokenizer/tokenizer_text.h"

#include <oniguruma.h>

#include <mutex>

#include "core/base/result.h"

namespace ms {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

using Ranges = std::vector<std::pair<size_t, size_t>>;

void init_oniguruma() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

void find_literal(std::string_view text, std::string_view lit, Ranges& out) {
  if (lit.empty()) return;
  size_t pos = 0;
  while ((pos = text.find(lit, pos)) != std::string_view::npos) {
    out.emplace_back(pos, pos + lit.size());
    pos += lit.size();
  }
}

// Hugging Face's SplitDelimiterBehavior over the matches of one piece.
void split_by(std::string_view text, const Ranges& matches, SplitBehavior behavior, bool invert,
              std::vector<std::pair<size_t, size_t>>& pieces) {
  struct Seg { size_t b, e; bool match; };
  std::vector<Seg> segs;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (b > prev) segs.push_back({prev, b, invert});
    segs.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < text.size()) segs.push_back({prev, text.size(), invert});

  size_t cur_b = 0, cur_e = 0;  // the piece being built, empty when cur_b == cur_e
  auto flush = [&] {
    if (cur_e > cur_b) pieces.emplace_back(cur_b, cur_e);
    cur_b = cur_e;
  };
  bool prev_match = false;
  for (const Seg& s : segs) {
    switch (behavior) {
      case SplitBehavior::kIsolated:
        pieces.emplace_back(s.b, s.e);
        break;
      case SplitBehavior::kRemoved:
        if (!s.match) pieces.emplace_back(s.b, s.e);
        break;
      case SplitBehavior::kMergedWithPrevious:
        if (cur_e == cur_b) cur_b = s.b;
        cur_e = s.e;
        if (s.match) flush();
        break;
      case SplitBehavior::kMergedWithNext:
        if (s.match) flush();
        if (cur_e == cur_b) cur_b = s.b;
        cur_e = s.e;
        break;
      case SplitBehavior::kContiguous:
        if (s.match != prev_match || !s.match) flush();
        if (cur_e == cur_b) cur_b = s.b;
        cur_e = s.e;
        break;
    }
    prev_match = s.match;
  }
  flush();
}

}  // namespace

Regex::Regex(const std::string& pattern) {
  init_oniguruma();
  OnigErrorInfo info;
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  const int r = onig_new(&m_reg, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                         ONIG_SYNTAX_RUBY, &info);
  if (r != ONIG_NORMAL) {
    OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(msg, r, &info);
    m_reg = nullptr;
    fail_input("regex /" + pattern + "/ does not compile: " + reinterpret_cast<char*>(msg));
  }
}

Regex::~Regex() {
  if (m_reg) onig_free(m_reg);
}

void Regex::find_all(std::string_view text, Ranges& out) const {
  const auto* str = reinterpret_cast<const OnigUChar*>(text.data());
  const OnigUChar* end = str + text.size();
  OnigRegion* region = onig_region_new();
  size_t pos = 0;
  while (pos < text.size()) {
    const int r = onig_search(m_reg, str, end, str + pos, end, region, ONIG_OPTION_NONE);
    if (r == ONIG_MISMATCH) break;
    if (r < 0) {
      onig_region_free(region, 1);
      OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
      onig_error_code_to_str(msg, r);
      fail_input(std::string("regex search failed: ") + reinterpret_cast<char*>(msg));
    }
    const size_t b = static_cast<size_t>(region->beg[0]), e = static_cast<size_t>(region->end[0]);
    if (e > b) {
      out.emplace_back(b, e);
      pos = e;
    } else {  // an empty match: step over one character
      pos = b + utf8_seq_len(static_cast<unsigned char>(text[b < text.size() ? b : 0]));
    }
  }
  onig_region_free(region, 1);
}

// ---- Normalizer ----

Normalizer::Step& Normalizer::push(Kind kind) {
  m_steps.emplace_back();
  m_steps.back().kind = kind;
  return m_steps.back();
}

void Normalizer::add_form(NormalForm form) { push(Kind::kForm).form = form; }
void Normalizer::add_lowercase() { push(Kind::kLowercase); }
void Normalizer::add_replace(std::string from, std::string to) {
  Step& s = push(Kind::kReplace);
  s.a = std::move(from);
  s.b = std::move(to);
}
void Normalizer::add_replace_regex(const std::string& pattern, std::string to) {
  auto regex = std::make_shared<Regex>(pattern);
  Step& s = push(Kind::kReplaceRegex);
  s.regex = std::move(regex);
  s.b = std::move(to);
}
void Normalizer::add_prepend(std::string prefix) { push(Kind::kPrepend).a = std::move(prefix); }
void Normalizer::add_strip(bool left, bool right) {
  Step& s = push(Kind::kStrip);
  s.left = left;
  s.right = right;
}

std::string Normalizer::run(std::string_view text) const {
  std::string s(text);
  Ranges ranges;
  for (const Step& step : m_steps) {
    switch (step.kind) {
      case Kind::kForm: s = unicode_normalize(s, step.form); break;
      case Kind::kLowercase: s = unicode_lowercase(s); break;
      case Kind::kReplace:
      case Kind::kReplaceRegex: {
        ranges.clear();
        if (step.kind == Kind::kReplace) find_literal(s, step.a, ranges);
        else step.regex->find_all(s, ranges);
        if (ranges.empty()) break;
        std::string out;
        size_t prev = 0;
        for (const auto& [b, e] : ranges) {
          out.append(s, prev, b - prev);
          out += step.b;
          prev = e;
        }
        out.append(s, prev, std::string::npos);
        s = std::move(out);
        break;
      }
      case Kind::kPrepend:
        if (!s.empty()) s = step.a + s;
        break;
      case Kind::kStrip: {
        size_t b = 0, e = s.size();
        if (step.left) {
          while (b < e) {
            size_t p = b;
            if (!is_unicode_space(utf8_next(s, p))) break;
            b = p;
          }
        }
        if (step.right) {
          while (e > b) {
            size_t start = e - 1;
            while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
            size_t p = start;
            if (!is_unicode_space(utf8_next(s, p))) break;
            e = start;
          }
        }
        s = s.substr(b, e - b);
        break;
      }
    }
  }
  return s;
}

// ---- PreTokenizer ----

void PreTokenizer::add_split_regex(const std::string& pattern, SplitBehavior behavior, bool invert) {
  Step s;
  s.kind = Kind::kSplit;
  s.regex = std::make_shared<Regex>(pattern);
  s.behavior = behavior;
  s.invert = invert;
  m_steps.push_back(std::move(s));
}

void PreTokenizer::add_split_string(std::string literal, SplitBehavior behavior, bool invert) {
  Step s;
  s.kind = Kind::kSplit;
  s.literal = std::move(literal);
  s.behavior = behavior;
  s.invert = invert;
  m_steps.push_back(std::move(s));
}

void PreTokenizer::add_byte_level(bool add_prefix_space, bool use_regex) {
  Step s;
  s.kind = Kind::kByteLevel;
  if (use_regex) s.regex = std::make_shared<Regex>(kGpt2Pattern);
  s.flag = add_prefix_space;
  m_steps.push_back(std::move(s));
}

void PreTokenizer::add_digits(bool individual) {
  add_split_regex(individual ? R"(\p{N})" : R"(\p{N}+)", SplitBehavior::kIsolated, false);
}

void PreTokenizer::add_metaspace(std::string replacement, PrependScheme scheme, bool split) {
  Step s;
  s.kind = Kind::kMetaspace;
  s.literal = std::move(replacement);
  s.scheme = scheme;
  s.flag = split;
  m_steps.push_back(std::move(s));
}

bool PreTokenizer::has_metaspace() const {
  for (const Step& s : m_steps)
    if (s.kind == Kind::kMetaspace) return true;
  return false;
}

void PreTokenizer::apply(const Step& step, Piece piece, std::vector<Piece>& out) const {
  Ranges matches, pieces;
  std::string& text = piece.text;
  switch (step.kind) {
    case Kind::kSplit:
      if (step.regex) step.regex->find_all(text, matches);
      else find_literal(text, step.literal, matches);
      split_by(text, matches, step.behavior, step.invert, pieces);
      break;
    case Kind::kByteLevel:
      if (step.flag && text[0] != ' ') text.insert(text.begin(), ' ');
      if (!step.regex) {
        out.push_back(std::move(piece));
        return;
      }
      step.regex->find_all(text, matches);
      split_by(text, matches, SplitBehavior::kIsolated, false, pieces);
      break;
    case Kind::kMetaspace: {
      std::string replaced;
      replaced.reserve(text.size() + step.literal.size());
      for (char c : text) {
        if (c == ' ') replaced += step.literal;
        else replaced += c;
      }
      const bool prepend = step.scheme == PrependScheme::kAlways ||
                           (step.scheme == PrependScheme::kFirst && piece.at_start);
      if (prepend && replaced.compare(0, step.literal.size(), step.literal) != 0)
        replaced.insert(0, step.literal);
      text = std::move(replaced);
      if (!step.flag) {
        out.push_back(std::move(piece));
        return;
      }
      find_literal(text, step.literal, matches);
      split_by(text, matches, SplitBehavior::kMergedWithNext, false, pieces);
      break;
    }
  }
  bool first = piece.at_start;
  for (const auto& [b, e] : pieces) {
    out.push_back({text.substr(b, e - b), first});
    first = false;
  }
}

void PreTokenizer::run(std::string_view text, bool at_start, std::vector<std::string>& words) const {
  if (text.empty()) return;
  std::vector<Piece> cur{{std::string(text), at_start}}, next;
  for (const Step& step : m_steps) {
    next.clear();
    for (Piece& p : cur) {
      if (!p.text.empty()) apply(step, std::move(p), next);
    }
    cur.swap(next);
  }
  for (Piece& p : cur) {
    if (!p.text.empty()) words.push_back(std::move(p.text));
  }
}

}  // namespace ms
