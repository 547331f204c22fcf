// Synthetic tasks of the trained zoo: the seeded generator, repeated random-token sequences and
// ASCII needle-in-a-haystack episodes, and their batching into token / target tensors.
#include "core/zoo/zoo_tasks.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <stdexcept>

#include "core/base/splitmix.h"
#include "core/zoo/zoo_text.h"

namespace ms {
namespace {

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

at::Tensor to_tensor(const std::vector<int64_t>& flat, int64_t rows, int64_t cols) {
  return at::tensor(flat, at::kLong).view({rows, cols});
}

// Filler: lowercase English-like sentences, exactly n characters (no digits or capitals).
void append_text_filler(std::vector<int32_t>& out, int64_t n, TaskRng& rng) {
  if (n <= 0) return;
  TextGenerator gen(rng.next());
  std::string text;
  while (static_cast<int64_t>(text.size()) < n + 1) text += gen.sentence() + " ";
  const int64_t start = rng.range(0, static_cast<int64_t>(text.size()) - n);
  for (int64_t i = 0; i < n; ++i) {
    char c = text[static_cast<size_t>(start + i)];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out.push_back(c == '?' || c == '!' ? '.' : c);
  }
}

// Filler: words of 2 to 6 random lowercase letters separated by single spaces, exactly n long.
void append_filler(std::vector<int32_t>& out, int64_t n, TaskRng& rng) {
  int64_t word_left = rng.range(2, 6);
  for (int64_t i = 0; i < n; ++i) {
    if (word_left == 0 && i + 1 < n) {
      out.push_back(' ');
      word_left = rng.range(2, 6);
    } else {
      out.push_back(static_cast<int32_t>('a' + rng.below(26)));
      if (word_left > 0) --word_left;
    }
  }
}

}  // namespace

TaskRng::TaskRng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : m_s) s = splitmix64(x);
}

uint64_t TaskRng::next() {
  const uint64_t result = rotl(m_s[1] * 5, 7) * 9;
  const uint64_t t = m_s[1] << 17;
  m_s[2] ^= m_s[0];
  m_s[3] ^= m_s[1];
  m_s[1] ^= m_s[2];
  m_s[0] ^= m_s[3];
  m_s[2] ^= t;
  m_s[3] = rotl(m_s[3], 45);
  return result;
}

uint64_t TaskRng::below(uint64_t n) {
  if (n == 0) throw std::invalid_argument("TaskRng::below(0)");
  return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
}

int64_t TaskRng::range(int64_t lo, int64_t hi) {
  if (hi < lo) throw std::invalid_argument("TaskRng::range: empty range");
  return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
}

double TaskRng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

TaskBatch make_batch(const std::vector<std::vector<int32_t>>& seqs,
                     const std::vector<std::vector<uint8_t>>& train) {
  if (seqs.empty()) throw std::invalid_argument("make_batch: no sequences");
  const int64_t B = static_cast<int64_t>(seqs.size()), T = static_cast<int64_t>(seqs[0].size());
  std::vector<int64_t> tok(static_cast<size_t>(B * T)), tgt(static_cast<size_t>(B * T), kIgnoreTarget);
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = seqs[static_cast<size_t>(b)];
    if (static_cast<int64_t>(s.size()) != T) throw std::invalid_argument("make_batch: ragged sequences");
    for (int64_t t = 0; t < T; ++t) {
      tok[static_cast<size_t>(b * T + t)] = s[static_cast<size_t>(t)];
      const bool trained = train.empty() || train[static_cast<size_t>(b)][static_cast<size_t>(t)];
      if (t + 1 < T && trained) tgt[static_cast<size_t>(b * T + t)] = s[static_cast<size_t>(t + 1)];
    }
  }
  return {to_tensor(tok, B, T), to_tensor(tgt, B, T)};
}

std::vector<int32_t> repeat_sequence(const RepeatTask& task, TaskRng& rng,
                                     std::vector<uint8_t>* predictable) {
  const int64_t T = task.seq_len, start = task.bos >= 0 ? 1 : 0;
  const int64_t room = T - start;
  if (room < 2 * task.min_span) throw std::invalid_argument("repeat task: sequence too short for two spans");
  std::vector<int32_t> s(static_cast<size_t>(T));
  if (task.bos >= 0) s[0] = task.bos;
  for (int64_t t = start; t < T; ++t)
    s[static_cast<size_t>(t)] = static_cast<int32_t>(rng.range(task.first_token, task.last_token));
  if (predictable) predictable->assign(static_cast<size_t>(T), 0);
  if (rng.chance(task.periodic)) {
    // Period len from the first random token on: token t copies token t - len.
    const int64_t len = rng.range(task.min_span, room / 2);
    for (int64_t t = start + len; t < T; ++t) {
      s[static_cast<size_t>(t)] = s[static_cast<size_t>(t - len)];
      if (predictable && t > start + len) (*predictable)[static_cast<size_t>(t)] = 1;
    }
    return s;
  }
  // Span length, then where the original and the copy start (the copy after the original).
  const int64_t len = rng.range(task.min_span, room / 2);
  const int64_t gap = rng.range(0, room - 2 * len);     // room between the two copies, split below
  const int64_t before = rng.range(0, room - 2 * len - gap);
  const int64_t s1 = start + before, s2 = s1 + len + gap;
  for (int64_t i = 0; i < len; ++i) s[static_cast<size_t>(s2 + i)] = s[static_cast<size_t>(s1 + i)];
  if (predictable)
    for (int64_t i = 1; i < len; ++i) (*predictable)[static_cast<size_t>(s2 + i)] = 1;
  return s;
}

TaskBatch repeat_batch(const RepeatTask& task, int64_t batch, TaskRng& rng) {
  std::vector<std::vector<int32_t>> seqs;
  for (int64_t b = 0; b < batch; ++b) seqs.push_back(repeat_sequence(task, rng));
  return make_batch(seqs);
}

at::Tensor repeated_random_tokens(int64_t batch, int64_t half, const std::vector<int32_t>& alphabet,
                                  int32_t bos, TaskRng& rng) {
  if (alphabet.empty()) throw std::invalid_argument("repeated_random_tokens: empty alphabet");
  const int64_t start = bos >= 0 ? 1 : 0, T = start + 2 * half;
  std::vector<int64_t> flat(static_cast<size_t>(batch * T));
  for (int64_t b = 0; b < batch; ++b) {
    int64_t* row = flat.data() + b * T;
    if (bos >= 0) row[0] = bos;
    for (int64_t i = 0; i < half; ++i) row[start + i] = row[start + half + i] = rng.pick(alphabet);
  }
  return to_tensor(flat, batch, T);
}

at::Tensor repeated_random_tokens(int64_t batch, int64_t half, int32_t first, int32_t last,
                                  int32_t bos, TaskRng& rng) {
  std::vector<int32_t> alphabet;
  for (int32_t t = first; t <= last; ++t) alphabet.push_back(t);
  return repeated_random_tokens(batch, half, alphabet, bos, rng);
}

Episode needle_episode(const NeedleTask& task, TaskRng& rng) {
  const int64_t needle_len = 3 + task.value_len;  // "<K" value ">"
  const int64_t tail_len = 2 + task.value_len + 1;  // "?K" value "."
  const int64_t filler = task.seq_len - 1 - tail_len - task.n_needles * needle_len;
  if (task.n_needles < 1 || task.n_needles > 26 || task.value_len < 1 ||
      task.n_needles * task.value_len > 10 || filler < 0)
    throw std::invalid_argument("needle task: sequence too short for its needles, or values need more than 10 digits");
  // Distinct keys, values of distinct digits, and where each needle goes in the filler.
  std::vector<int32_t> keys;
  while (static_cast<int64_t>(keys.size()) < task.n_needles) {
    const int32_t k = static_cast<int32_t>('A' + rng.below(26));
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  }
  std::vector<int32_t> digits{'0', '1', '2', '3', '4', '5', '6', '7', '8', '9'};
  for (size_t i = 0; i + 1 < digits.size(); ++i)
    std::swap(digits[i], digits[i + static_cast<size_t>(rng.below(digits.size() - i))]);
  std::vector<int64_t> at_filler;
  for (int64_t i = 0; i < task.n_needles; ++i) at_filler.push_back(rng.range(0, filler));
  std::sort(at_filler.begin(), at_filler.end());
  const size_t asked = static_cast<size_t>(rng.below(keys.size()));
  auto value = [&](size_t n, int64_t i) { return digits[n * static_cast<size_t>(task.value_len) + static_cast<size_t>(i)]; };

  Episode ep;
  auto fill = [&](int64_t n) {
    if (task.text_filler) append_text_filler(ep.tokens, n, rng);
    else append_filler(ep.tokens, n, rng);
  };
  ep.tokens.push_back(kAsciiBos);
  int64_t done = 0, asked_value_at = -1;
  for (size_t n = 0; n < keys.size(); ++n) {
    fill(at_filler[n] - done);
    done = at_filler[n];
    ep.tokens.push_back('<');
    ep.tokens.push_back(keys[n]);
    if (n == asked) asked_value_at = static_cast<int64_t>(ep.tokens.size());
    for (int64_t i = 0; i < task.value_len; ++i) ep.tokens.push_back(value(n, i));
    ep.tokens.push_back('>');
  }
  fill(filler - done);
  ep.tokens.push_back('?');
  ep.tokens.push_back(keys[asked]);
  for (int64_t i = 0; i < task.value_len; ++i) {
    ep.answer_pos.push_back(static_cast<int64_t>(ep.tokens.size()));
    ep.source_pos.push_back(asked_value_at + i);
    ep.tokens.push_back(value(asked, i));
  }
  ep.tokens.push_back('.');
  return ep;
}

TaskBatch needle_batch(const NeedleTask& task, int64_t batch, TaskRng& rng, double repeat_share) {
  const double share = repeat_share >= 0 ? repeat_share : task.repeat_share;
  std::vector<std::vector<int32_t>> seqs;
  std::vector<std::vector<uint8_t>> train;
  RepeatTask repeat;
  repeat.seq_len = task.seq_len;
  for (int64_t b = 0; b < batch; ++b) {
    if (rng.chance(share)) {
      seqs.push_back(repeat_sequence(repeat, rng));
      train.emplace_back(seqs.back().size(), 1);
      continue;
    }
    Episode ep = needle_episode(task, rng);
    std::vector<uint8_t> mask(ep.tokens.size(), task.train_all ? 1 : 0);
    for (int64_t p : ep.answer_pos) mask[static_cast<size_t>(p - 1)] = 1;
    mask[ep.tokens.size() - 2] = 1;  // the closing "."
    seqs.push_back(std::move(ep.tokens));
    train.push_back(std::move(mask));
  }
  return make_batch(seqs, train);
}

at::Tensor episode_tokens(const std::vector<Episode>& episodes, int32_t pad) {
  size_t T = 0;
  for (const Episode& e : episodes) T = std::max(T, e.tokens.size());
  const int64_t B = static_cast<int64_t>(episodes.size());
  std::vector<int64_t> flat(static_cast<size_t>(B) * T, pad);
  for (size_t b = 0; b < episodes.size(); ++b)
    std::copy(episodes[b].tokens.begin(), episodes[b].tokens.end(), flat.begin() + static_cast<int64_t>(b * T));
  return to_tensor(flat, B, static_cast<int64_t>(T));
}

}  // namespace ms
