// Retrieval-head analysis (Wu et al. 2024, "Retrieval Head Mechanistically Explains Long-Context
// Factuality"): needle-in-a-haystack episodes decoded greedily with the KV cache, per-head copy
// scores from the argmax key of each decode step, and head masking (uniform attention) for the
// causal check. Episodes are token ids; core/analysis/retrieval/needle.h builds them from text or for toy models.
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/attention/attention_observer.h"
#include "core/model/model.h"
#include "core/analysis/sinks/sinks.h"  // HeadRef, Progress

namespace ms {

// One needle-in-a-haystack test: the prompt ends with the question (or cue); the needle occupies
// prompt[needle_begin, needle_end); answer is what a correct model generates.
struct NeedleEpisode {
  std::vector<int32_t> prompt;
  int64_t needle_begin = 0, needle_end = 0;
  std::vector<int32_t> answer;       // ids (exact match / id ROUGE)
  std::string answer_text;           // text ROUGE when the model has a tokenizer ("" : use ids)
  int64_t max_new = 0;               // decode budget; 0: RetrievalOptions::max_new
  int64_t length_index = 0, depth_index = 0, needle_index = 0;  // the grid cell
};

struct RetrievalOptions {
  int64_t max_new = 50;              // greedy decode steps at most (Wu et al.: 50)
  std::vector<int32_t> stop_ids;     // decoding stops after generating one of these (newline)
  bool exact_match = false;          // toy models: correct iff the output starts with the answer
  double rouge_threshold = 0.5;      // else: correct iff ROUGE-1 recall > this
  double threshold = 0.1;            // retrieval head iff score > threshold
  // The prompt is prefilled through the KV cache this many positions at a time (0: at once), so
  // a long prompt's activations never exist for all positions together; the result is the same.
  int64_t prefill_chunk = 4096;
};

// The pure scoring rule of one decode step. argmax_keys[layer * n_heads + head] is the key
// position with the highest attention from the new query; tokens are the ids at every position so
// far; generated is the token this step produced. A head whose argmax lies in
// [needle_begin, needle_end) on a token equal to generated gets 1 / (needle_end - needle_begin).
std::vector<double> retrieval_step_scores(const std::vector<int64_t>& argmax_keys, int64_t needle_begin,
                                          int64_t needle_end, const std::vector<int32_t>& tokens,
                                          int32_t generated);

// ROUGE-1 recall of reference's unigrams in candidate (clipped counts), in [0, 1].
double rouge1_recall(const std::vector<std::string>& candidate, const std::vector<std::string>& reference);
// Lower-cased words of a text (split on anything not alphanumeric).
std::vector<std::string> rouge_words(const std::string& text);

// Records, for blocks with a single query (decode steps), the argmax key of every head of every
// layer, over batch row 0. Cost O(keys) per head.
class ArgmaxObserver : public AttentionObserver {
 public:
  ArgmaxObserver(int64_t n_layers, int64_t n_heads);
  bool wants_layer(int64_t layer) const override { (void)layer; return enabled; }
  void on_block(AttentionBlock& block) override;
  // A decode step's argmax from the fused kernel (scores read once, no probabilities stored):
  // the first maximal score is the first maximal weight, barring two scores that round to the
  // same float32 weight.
  bool fused_stats(int64_t layer, int64_t q_begin, int64_t n_queries, int64_t sliding_window,
                   FusedAttentionStats& out) override;
  void reset();                                        // before each step
  const std::vector<int64_t>& argmax() const { return m_pos; }  // layer * n_heads + head; -1: not seen
  bool enabled = true;

 private:
  int64_t m_heads;
  std::vector<int64_t> m_pos;
  std::vector<float> m_best;
};

// Wu et al.'s masking: the chosen heads' attention becomes uniform over the keys each query sees
// (causal, and within the sliding window when there is one). Other heads are untouched.
class HeadMask : public AttentionObserver {
 public:
  explicit HeadMask(std::vector<HeadRef> heads);
  bool wants_layer(int64_t layer) const override;
  void on_block(AttentionBlock& block) override;

 private:
  std::vector<HeadRef> m_heads;
};

// What one episode gave.
struct EpisodeResult {
  std::vector<int32_t> generated;
  double rouge = 0;                  // ROUGE-1 recall (1/0 under exact match)
  bool correct = false;
  at::Tensor head_score;             // (layer, head) float64: this test's score (counted or not)
};

// Prefill, then greedy decoding with the KV cache; scores every decode step (the argmax rows only)
// unless score is false; masks the given heads throughout (prefill and decode).
// decode maps ids to text for ROUGE when the episode has answer_text (may be empty otherwise).
EpisodeResult run_needle_episode(const Model& model, const NeedleEpisode& ep, const RetrievalOptions& opts,
                                 const std::vector<HeadRef>& masked = {}, bool score = true,
                                 const std::function<std::string(const std::vector<int32_t>&)>& decode = {});

// A whole grid: per-head scores (mean over correct tests), accuracy per (length, depth) cell.
struct RetrievalReport {
  int64_t n_layers = 0, n_heads = 0, n_tests = 0, n_counted = 0;
  at::Tensor head_score;             // (layer, head) float64
  at::Tensor accuracy;               // (n_lengths, n_depths) float64, 100 x share correct
  std::vector<EpisodeResult> results;  // one per episode, in order
};

// Aggregates per-episode results (e.g. some read back from a database) into a report.
RetrievalReport aggregate_retrieval(const std::vector<NeedleEpisode>& episodes,
                                    const std::vector<EpisodeResult>& results, int64_t n_lengths,
                                    int64_t n_depths, int64_t n_layers, int64_t n_heads);

// Runs every episode (the grid cells must index into n_lengths x n_depths). Stops early when
// cancel becomes true (the report then holds the episodes done).
RetrievalReport analyze_retrieval(const Model& model, const std::vector<NeedleEpisode>& episodes,
                                  int64_t n_lengths, int64_t n_depths, const RetrievalOptions& opts,
                                  const std::vector<HeadRef>& masked = {}, const Progress& progress = {},
                                  const std::atomic<bool>* cancel = nullptr);

// Heads sorted by score (highest first); retrieval heads are those above opts.threshold.
std::vector<std::pair<HeadRef, double>> rank_heads(const at::Tensor& head_score);
std::vector<HeadRef> retrieval_heads(const at::Tensor& head_score, double threshold);
// k random heads not in exclude, drawn with the seed (fewer when not enough heads).
std::vector<HeadRef> random_heads(int64_t n_layers, int64_t n_heads, const std::vector<HeadRef>& exclude,
                                  int64_t k, uint64_t seed);

}  // namespace ms
