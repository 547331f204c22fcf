// Synthetic data for the zoo's trained models: repeated random-token sequences (induction) and
// needle-in-a-haystack episodes (retrieval) over a 128-token ASCII vocabulary, reproducible from
// a seed with our own generator (std distributions differ between standard libraries).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ms {

// splitmix64-seeded xoshiro256**: the same stream on every platform.
class TaskRng {
 public:
  explicit TaskRng(uint64_t seed);
  uint64_t next();
  uint64_t below(uint64_t n);             // uniform in [0, n); n > 0
  int64_t range(int64_t lo, int64_t hi);  // uniform in [lo, hi]
  double uniform();                       // [0, 1)
  bool chance(double p) { return uniform() < p; }
  template <class T>
  const T& pick(const std::vector<T>& items) { return items[below(items.size())]; }

 private:
  uint64_t m_s[4];
};

// Targets that the loss ignores (at::nll_loss's default ignore_index).
constexpr int64_t kIgnoreTarget = -100;

// A training batch: tokens [B, T] int64, and the next-token targets [B, T] int64 (targets[b, t]
// is the token at t + 1, or kIgnoreTarget where that prediction is not trained).
struct TaskBatch {
  at::Tensor tokens;
  at::Tensor targets;
};

// Stacks equal-length sequences into a batch; train[b][t] says whether position t's next-token
// prediction is trained (empty: all of them).
TaskBatch make_batch(const std::vector<std::vector<int32_t>>& seqs,
                     const std::vector<std::vector<uint8_t>>& train = {});

// The ASCII vocabulary of the induction and retrieval models: id 0 is BOS (<|endoftext|>), ids
// 1..127 are the ASCII bytes themselves, so `mechscope forward --text` reads them directly.
constexpr int32_t kAsciiBos = 0;
constexpr int64_t kAsciiVocab = 128;

// --- Induction --------------------------------------------------------------------------------

struct RepeatTask {
  int64_t seq_len = 64;     // including BOS
  int32_t bos = kAsciiBos;  // -1: no BOS
  int32_t first_token = 1;  // random tokens are uniform in [first_token, last_token]
  int32_t last_token = 127;
  int64_t min_span = 4;
  double periodic = 0.0;  // share of sequences that repeat one span over and over
};

// BOS and random tokens with repeats, in one of two layouts: one span copied later at a random
// distance, or (with probability `periodic`) a random span repeated until the sequence ends.
// Span lengths and places are random, so no fixed positional offset predicts the copies; only
// induction does. predictable (optional) marks the positions whose token follows by induction
// from the one before (every copy, from its 2nd token on).
std::vector<int32_t> repeat_sequence(const RepeatTask& task, TaskRng& rng,
                                     std::vector<uint8_t>* predictable = nullptr);
// A batch of repeat_sequence()s; every position's next token is trained.
TaskBatch repeat_batch(const RepeatTask& task, int64_t batch, TaskRng& rng);
// The standard induction probe: [batch, (bos >= 0) + 2 * half]: BOS, `half` random tokens from
// [first, last], then the same tokens again.
at::Tensor repeated_random_tokens(int64_t batch, int64_t half, int32_t first, int32_t last,
                                  int32_t bos, TaskRng& rng);
// The same with the random tokens drawn uniformly from `alphabet`.
at::Tensor repeated_random_tokens(int64_t batch, int64_t half, const std::vector<int32_t>& alphabet,
                                  int32_t bos, TaskRng& rng);

// --- Retrieval --------------------------------------------------------------------------------

// An episode with an answer copied from a needle: tokens, the positions of the answer's tokens,
// and for each of them the needle position holding the same token (what a retrieval head should
// attend to when the answer token is predicted, i.e. from the query at answer_pos[i] - 1).
struct Episode {
  std::vector<int32_t> tokens;
  std::vector<int64_t> answer_pos;
  std::vector<int64_t> source_pos;
};

// ASCII episodes of exactly seq_len tokens: BOS, filler with n_needles needles "<K123>" (distinct
// uppercase keys; values of distinct digits, so each digit occurs once) at random places, then the
// question "?K" for one of the keys, its value and ".". The filler is lowercase English-like text
// (zoo_text's grammar), or words of random letters.
struct NeedleTask {
  int64_t seq_len = 64;
  int64_t n_needles = 3;
  int64_t value_len = 3;      // n_needles * value_len <= 10
  bool text_filler = true;
  bool train_all = true;      // train every position of an episode, not only the answer
  double repeat_share = 0.5;  // training batches: this share are repeat_sequence()s (see below)
  double repeat_only = 0.5;   // the first such share of training steps sees repeats only
};

Episode needle_episode(const NeedleTask& task, TaskRng& rng);
// A training batch: needle episodes (every position trained, or only the answer and the final ".")
// mixed with repeat_sequence()s of the same length (all positions trained). The repeats are the dense signal
// that grows the copying heads in a couple of million tokens; the episodes teach using them to
// retrieve. repeat_share overrides task.repeat_share when >= 0 (the curriculum's first phase).
TaskBatch needle_batch(const NeedleTask& task, int64_t batch, TaskRng& rng, double repeat_share = -1);

// Episodes of different lengths as one batch, padded on the right with pad (causal attention:
// padding never changes what the real positions compute).
at::Tensor episode_tokens(const std::vector<Episode>& episodes, int32_t pad);

}  // namespace ms
