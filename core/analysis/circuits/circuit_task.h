// Circuit tasks: clean/corrupted prompt pairs with answer and distractor tokens (IOI with our own
// BABA/ABBA templates and ABC corruption, induction, greater-than, custom CSV/JSONL files) and
// the task metric every circuit method differentiates or compares.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/result.h"

namespace ms {

class Tokenizer;

enum class MetricKind { kLogitDiff, kProbDiff };

// Pairs of equal-length clean and corrupted prompts. Pairs of different lengths are right-padded
// (causal attention: padding after answer_pos cannot change the scored logits).
struct TaskPairs {
  std::string name;                  // "ioi", "induction", "greater-than", "custom"
  at::Tensor clean, corrupted;       // [N, T] int64
  std::vector<int64_t> answer_pos;   // per pair: the position whose next-token logits are scored
  std::vector<int32_t> answer, distractor;  // per pair (logit difference)
  MetricKind metric = MetricKind::kLogitDiff;
  // greater-than: probability on years > YY minus years <= YY; year_ids[k] is the token of "kk"
  // (-1 when not a single token), yy[i] the start year of pair i.
  std::vector<int32_t> year_ids;
  std::vector<int> yy;
  std::vector<std::string> clean_text, corrupted_text;  // for display; may be empty
  int64_t n_candidates = 0;          // prompts generated before the single-token filter
  int64_t n_kept = 0;                // prompts that survived it
  int64_t n() const { return clean.defined() ? clean.size(0) : 0; }
  int64_t seq_len() const { return clean.defined() ? clean.size(1) : 0; }
};

struct TaskOptions {
  std::string name = "ioi";   // ioi | induction | greater-than | custom
  std::string file;           // custom: a .csv or .jsonl file
  int64_t n = 32;             // pairs to make
  uint64_t seed = 0;
  int64_t half_len = 8;       // induction: tokens in each half
  int32_t vocab_lo = -1, vocab_hi = -1;  // induction: token range [lo, hi) (default: whole vocab)
  bool bos = true;            // prepend the tokenizer's / config's BOS when it has one
  int32_t bos_id = -1;        // induction without a tokenizer: BOS to prepend (-1: none)
};

// Makes the pairs. ioi and greater-than need a tokenizer; induction needs only d_vocab; custom
// needs a tokenizer unless every field is token ids. Errors: kUsage for a bad option, kBadInput
// for a custom file (naming the file, line and problem) or when no prompt survives the filter.
Result<TaskPairs> make_task(const TaskOptions& opts, const Tokenizer* tok, int64_t d_vocab);

// The task metric per pair, [N], differentiable: logit(answer) - logit(distractor) at answer_pos,
// or for greater-than sum p(years > YY) - sum p(years <= YY). logits: [N, T, V].
at::Tensor task_metric_per_pair(const TaskPairs& t, const at::Tensor& logits);
// Its mean over pairs (a 0-d tensor).
at::Tensor task_metric(const TaskPairs& t, const at::Tensor& logits);
// The log-probabilities at each pair's answer position, [N, V] (for KL to the clean run).
at::Tensor answer_log_probs(const TaskPairs& t, const at::Tensor& logits);
// Mean over pairs of KL(p_ref || p) at the answer positions; ref_log_probs from answer_log_probs.
at::Tensor kl_to_reference(const TaskPairs& t, const at::Tensor& ref_log_probs, const at::Tensor& logits);

}  // namespace ms
