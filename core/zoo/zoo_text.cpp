// The procedural English-like grammar (our own word lists and sentence frames), repeated spans,
// text needle episodes with token-level answer/source positions, and the default model's mix.
#include "core/zoo/zoo_text.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>

namespace ms {
namespace {

using Words = std::vector<std::string>;

const Words kNames = {"Ada", "Ben", "Cora", "Dev", "Elin", "Finn", "Greta", "Hugo", "Iris",
                      "Jonas", "Kira", "Leo", "Maya", "Nils", "Olga", "Pavel", "Rosa", "Sami",
                      "Tess", "Ugo", "Vera", "Wim", "Yara", "Zane"};
const Words kNouns = {"cat", "dog", "bird", "fox", "horse", "river", "tree", "house", "garden",
                      "lamp", "door", "window", "road", "hill", "boat", "stone", "apple", "bread",
                      "letter", "book", "clock", "key", "bell", "cup", "table", "chair", "field",
                      "forest", "bridge", "candle", "coat", "hat", "basket", "wheel", "ship",
                      "cloud", "star", "shell", "rope", "map", "box", "song", "fire", "well",
                      "tower", "village", "market", "kitchen", "roof", "flower"};
const Words kAdjectives = {"red", "blue", "green", "small", "large", "old", "young", "quiet",
                           "loud", "bright", "dark", "warm", "cold", "heavy", "tall", "soft",
                           "happy", "sad", "clever", "brave", "tired", "wet", "dry", "round",
                           "empty", "full", "strange", "golden", "silver", "gentle", "quick", "slow"};
const Words kVerbsT = {"saw", "found", "carried", "painted", "opened", "closed", "pushed",
                       "pulled", "watched", "followed", "helped", "lifted", "dropped", "cleaned",
                       "fixed", "sold", "bought", "built", "took", "liked", "held", "washed",
                       "counted", "hid", "moved", "visited"};
const Words kVerbsI = {"slept", "laughed", "waited", "ran", "sang", "smiled", "walked", "jumped",
                       "rested", "stayed", "danced", "shouted", "listened", "worked", "played"};
const Words kAdverbs = {"slowly", "quickly", "quietly", "happily", "softly", "early", "late",
                        "again", "together", "carefully", "suddenly"};
const Words kPreps = {"in", "near", "under", "behind", "beside", "across", "inside", "above"};
const Words kTimes = {"In the morning", "At night", "After dinner", "Before the rain",
                      "Every day", "On Sunday", "Later", "That evening", "Long ago"};
const Words kConj = {"and", "but", "because", "so", "while"};
const Words kOnsets = {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "th"};
const Words kVowels = {"a", "e", "i", "o", "u"};
const Words kCodas = {"", "", "n", "r", "l", "k", "s"};

std::string capitalised(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

// Byte offset where each token of ids starts in the decoded text, plus the end.
std::vector<size_t> token_offsets(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<size_t> off{0};
  for (int32_t id : ids) off.push_back(off.back() + tok.decode({id}, true).size());
  return off;
}

// Token positions whose bytes start inside [begin, end) of the text.
std::vector<int64_t> tokens_in(const std::vector<size_t>& off, size_t begin, size_t end) {
  std::vector<int64_t> out;
  for (size_t i = 0; i + 1 < off.size(); ++i)
    if (off[i] >= begin && off[i] < end) out.push_back(static_cast<int64_t>(i));
  return out;
}

}  // namespace

std::string TextGenerator::noun_phrase(bool subject) {
  const uint64_t r = m_rng.below(10);
  if (!m_cast.empty() && r < 4) return m_rng.pick(m_cast);
  std::string det = subject || m_rng.chance(0.6) ? "the" : "a";
  if (!subject && !m_cast.empty() && r == 4) det = m_rng.chance(0.5) ? "her" : "his";
  std::string np = det + " ";
  if (m_rng.chance(0.5)) np += m_rng.pick(kAdjectives) + " ";
  if (det == "a" && std::string("aeiou").find(np[2]) != std::string::npos) np = "an " + np.substr(2);
  return np + m_rng.pick(kNouns);
}

std::string TextGenerator::clause() {
  switch (m_rng.below(7)) {
    case 0:
    case 1: {
      std::string s = noun_phrase(true) + " " + m_rng.pick(kVerbsT) + " " + noun_phrase(false);
      if (m_rng.chance(0.4)) s += " " + m_rng.pick(kPreps) + " the " + m_rng.pick(kNouns);
      return s;
    }
    case 2: {
      std::string s = noun_phrase(true) + " " + m_rng.pick(kVerbsI);
      if (m_rng.chance(0.5)) s += " " + m_rng.pick(kAdverbs);
      return s;
    }
    case 3: return noun_phrase(true) + " was " + m_rng.pick(kAdjectives);
    case 4: return m_rng.pick(kTimes) + " " + noun_phrase(true) + " " + m_rng.pick(kVerbsT) + " " + noun_phrase(false);
    case 5: return noun_phrase(true) + " said that " + noun_phrase(true) + " was " + m_rng.pick(kAdjectives);
    default:
      return "there was " + std::string(m_rng.chance(0.5) ? "a " + m_rng.pick(kAdjectives) + " " : "a ") +
             m_rng.pick(kNouns) + " " + m_rng.pick(kPreps) + " the " + m_rng.pick(kNouns);
  }
}

std::string TextGenerator::sentence() {
  const uint64_t r = m_rng.below(12);
  if (r == 0) return "Where was the " + m_rng.pick(kAdjectives) + " " + m_rng.pick(kNouns) + "?";
  if (r == 1) return "Who " + m_rng.pick(kVerbsT) + " the " + m_rng.pick(kNouns) + "?";
  std::string s = clause();
  if (r < 5) s += " " + m_rng.pick(kConj) + " " + clause();
  // "An" only fixes articles before vowels when the grammar wrote "a".
  if (s.compare(0, 2, "a ") == 0 && std::string("aeiou").find(s[2]) != std::string::npos) s = "an " + s.substr(2);
  return capitalised(s) + (r == 11 ? "!" : ".");
}

std::string TextGenerator::paragraph(int64_t n_sentences) {
  m_cast.clear();
  const int64_t n_cast = m_rng.range(1, 3);
  while (static_cast<int64_t>(m_cast.size()) < n_cast) {
    const std::string& n = m_rng.pick(kNames);
    if (std::find(m_cast.begin(), m_cast.end(), n) == m_cast.end()) m_cast.push_back(n);
  }
  std::string out;
  for (int64_t i = 0; i < n_sentences; ++i) out += (i ? " " : "") + sentence();
  m_cast.clear();
  return out;
}

std::string TextGenerator::made_up_word() {
  std::string w;
  const int64_t n = m_rng.range(2, 3);
  for (int64_t i = 0; i < n; ++i) w += m_rng.pick(kOnsets) + m_rng.pick(kVowels) + m_rng.pick(kCodas);
  return w;
}

std::string TextGenerator::random_words(int64_t n) {
  static const std::vector<const Words*> kLists = {&kNouns, &kAdjectives, &kVerbsT, &kVerbsI, &kAdverbs, &kNames};
  std::string out;
  for (int64_t i = 0; i < n; ++i) {
    out += i ? " " : "";
    out += m_rng.chance(0.3) ? made_up_word() : m_rng.pick(*m_rng.pick(kLists));
  }
  return out;
}

std::string TextGenerator::repeated_span() {
  const std::string span = random_words(m_rng.range(4, 16));
  switch (m_rng.below(3)) {
    case 0: return "The list was: " + span + ". Again, the list was: " + span + ".";
    case 1: return capitalised(span) + ". " + capitalised(span) + ".";
    default: return capitalised(span) + ". " + sentence() + " " + capitalised(span) + ".";
  }
}

std::string TextGenerator::document() {
  const uint64_t r = m_rng.below(10);
  if (r < 4) return paragraph(m_rng.range(3, 8));
  if (r < 7) return repeated_span();
  std::string out;
  const std::string thing = m_rng.pick(kAdjectives) + " " + m_rng.pick(kNouns), word = made_up_word();
  out = paragraph(m_rng.range(1, 3)) + " The code of the " + thing + " is " + word + ". " +
        paragraph(m_rng.range(1, 4)) + " Question: what is the code of the " + thing + "? Answer: " + word + ".";
  return out;
}

Episode text_needle_episode(const Tokenizer& tok, TextGenerator& gen, int64_t max_len, int64_t n_needles) {
  TaskRng& rng = gen.rng();
  std::vector<std::string> things, words;
  while (static_cast<int64_t>(things.size()) < n_needles) {
    std::string t = rng.pick(kAdjectives) + " " + rng.pick(kNouns), w = gen.made_up_word();
    if (std::find(things.begin(), things.end(), t) != things.end() ||
        std::find(words.begin(), words.end(), w) != words.end())
      continue;
    things.push_back(t);
    words.push_back(w);
  }
  const size_t asked = static_cast<size_t>(rng.below(things.size()));
  std::vector<std::string> filler;
  for (int64_t i = 0; i < 24; ++i) filler.push_back(gen.sentence());
  std::vector<int64_t> slots;
  for (int64_t i = 0; i < n_needles; ++i) slots.push_back(rng.range(0, 24));
  std::sort(slots.begin(), slots.end());
  // Fewer filler sentences until the episode fits; the needles keep their relative places.
  for (int64_t n_fill = 24; n_fill >= 0; --n_fill) {
    std::string text;
    size_t src_begin = 0, src_end = 0;
    size_t needle = 0;
    for (int64_t i = 0; i <= n_fill; ++i) {
      while (needle < slots.size() && std::min<int64_t>(slots[needle], n_fill) == i) {
        text += (text.empty() ? "" : " ") + std::string("The code of the ") + things[needle] + " is";
        if (needle == asked) src_begin = text.size();
        text += " " + words[needle];
        if (needle == asked) src_end = text.size();
        text += ".";
        ++needle;
      }
      if (i < n_fill) text += (text.empty() ? "" : " ") + filler[static_cast<size_t>(i)];
    }
    text += " Question: what is the code of the " + things[asked] + "? Answer:";
    const size_t ans_begin = text.size();
    text += " " + words[asked];
    const size_t ans_end = text.size();
    text += ".";
    Episode ep;
    ep.tokens = tok.encode(text, true, false);
    if (static_cast<int64_t>(ep.tokens.size()) > max_len && n_fill > 0) continue;
    // Offsets are in the decoded text, which starts after a BOS the tokenizer added.
    std::vector<size_t> off = token_offsets(tok, ep.tokens);
    std::vector<int64_t> src = tokens_in(off, src_begin, src_end), ans = tokens_in(off, ans_begin, ans_end);
    if (src.size() != ans.size()) throw std::logic_error("needle and answer tokenize differently");
    for (size_t i = 0; i < ans.size(); ++i)
      if (ep.tokens[static_cast<size_t>(src[i])] != ep.tokens[static_cast<size_t>(ans[i])])
        throw std::logic_error("needle and answer tokenize differently");
    ep.answer_pos = ans;
    ep.source_pos = src;
    return ep;
  }
  throw std::invalid_argument("needle episode does not fit in " + std::to_string(max_len) + " tokens");
}

at::Tensor repeated_word_probe(const Tokenizer& tok, TextGenerator& gen, int64_t batch, int64_t half) {
  at::Tensor out = at::empty({batch, 1 + 2 * half}, at::kLong);
  auto acc = out.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    // Words are added until " w1 w2 ... wn." is exactly `half` tokens (restart on overshoot), so
    // the probe reads as the corpus' own "Span. Span." repeats.
    std::vector<int32_t> ids;
    std::string words;
    for (int tries = 0; static_cast<int64_t>(ids.size()) != half; ++tries) {
      if (tries > 10000) throw std::logic_error("no run of words tokenizes to " + std::to_string(half) + " tokens");
      if (static_cast<int64_t>(ids.size()) > half) words.clear();
      words += " " + gen.random_words(1);
      ids = tok.encode(words + ".", false);
    }
    acc[b][0] = tok.special().bos >= 0 ? tok.special().bos : 0;
    for (int64_t i = 0; i < half; ++i) acc[b][1 + i] = acc[b][1 + half + i] = ids[static_cast<size_t>(i)];
  }
  return out;
}

std::vector<int32_t> corpus_sequence(const Tokenizer& tok, TextGenerator& gen, int64_t seq_len) {
  std::string text;
  std::vector<int32_t> ids;
  while (static_cast<int64_t>(ids.size()) < seq_len) {
    while (static_cast<int64_t>(text.size()) < seq_len * 6) text += (text.empty() ? "" : "\n\n") + gen.document();
    ids = tok.encode(text, true, false);
    text += "\n\n" + gen.document();
  }
  ids.resize(static_cast<size_t>(seq_len));
  return ids;
}

TaskBatch corpus_batch(const Tokenizer& tok, TextGenerator& gen, int64_t batch, int64_t seq_len) {
  std::vector<std::vector<int32_t>> seqs;
  for (int64_t b = 0; b < batch; ++b) seqs.push_back(corpus_sequence(tok, gen, seq_len));
  return make_batch(seqs);
}

}  // namespace ms
