// Discrete-SAE circuit identification (O'Neill and Bui, "Sparse Autoencoders Enable Scalable and
// Reliable Circuit Identification in Language Models", arXiv 2405.12522 v1): each head's output
// on a few positive prompts (the model predicts the answer) and negative ones (it does not) is
// encoded by one small SAE, discretised to an integer code (the most active feature), and a head
// scores the number of codes that occur on positive prompts and never on negative ones.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/analysis/circuits/circuit_task.h"
#include "core/model/model.h"

namespace ms {

struct DsaeOptions {
  int64_t n_examples = 5;   // positives and negatives each (the paper: 5 + 5)
  int64_t d_sae = 200;      // codebook size (the paper: 200)
  int64_t epochs = 500;     // full-batch Adam steps (the paper: 500)
  double l1 = 0.02;         // L1 weight (the paper: 0.02; 0.05 for docstring)
  double lr = 1e-3;
  uint64_t seed = 0;
  bool per_head = false;    // one codebook per head, each on that head's rows scaled by their own RMS
                            // (the "per-head codebooks"); false: one SAE shared by every
                            // head (the paper's code), inputs scaled by one common RMS
  bool mean_positions = false;  // true: mean of the head's output over positions 0..answer_pos (the
                                // paper's "mean"); false: the output at answer_pos only (default)
};

// Head outputs (hook_result: the head's write to the residual stream), [N, n_layers * n_heads,
// d_model] float64, one vector per prompt and head (layer-major), of tokens [N, T].
at::Tensor head_output_vectors(const Model& m, const at::Tensor& tokens, const std::vector<int64_t>& answer_pos,
                               bool mean_positions);

// The shared SAE: ReLU(x W_enc + b_enc) W_dec + b_dec, trained full-batch with Adam on
// MSE + l1 * mean_rows(sum_features |a|). x: [M, d] float64 (already scaled).
struct CodeSae {
  at::Tensor w_enc, b_enc, w_dec, b_dec;  // [d, F], [F], [F, d], [d]
};
CodeSae train_code_sae(const at::Tensor& x, const DsaeOptions& o);
// The integer code of each row: argmax of the activations, or F (the "silent" code) when no
// feature is active. x: [..., d] -> [...] int64.
at::Tensor encode_codes(const CodeSae& sae, const at::Tensor& x);

// Per head (column of codes [N, n_heads_total]): codes seen on positive rows and never on
// negative ones (unique), and that count over the codes seen on either (fraction, 0 when none).
struct CodeOverlap {
  std::vector<int64_t> unique;
  std::vector<double> fraction;
};
CodeOverlap code_overlap(const at::Tensor& codes, const std::vector<bool>& positive);

// Heads in ranking order: unique desc, then fraction desc, then head index.
std::vector<int64_t> rank_heads(const CodeOverlap& s);

struct DsaeResult {
  std::vector<int64_t> positives, negatives;  // pair indices: clean prompts the model gets right;
                                              // corrupted prompts on which it does not predict the answer
  at::Tensor codes;              // [n_pos + n_neg, n_layers * n_heads] int64, positives first
  CodeOverlap overlap;
  std::vector<int64_t> ranking;  // head indices (layer * n_heads + head), best first
  CodeSae sae;                   // the trained codebook (shared); per_head: the last head's
  double scale = 1.0;            // the inputs were divided by this (their RMS; per_head: the last head's)
  double recon_fve = 0.0;        // fraction of variance the SAE explains on its inputs (per_head: the
                                 // mean over heads)
  double seconds_forward = 0, seconds_train = 0;
};
// The first n_examples pairs whose clean prompt the model gets right (top-1 is the answer and the
// metric is positive; greater-than: the metric is positive) and the first n_examples whose
// corrupted prompt it does not (top-1 is not the answer; greater-than: every corrupted prompt).
void pick_examples(const Model& m, const TaskPairs& task, int64_t n_examples, std::vector<int64_t>* positives,
                   std::vector<int64_t>* negatives);
// Head outputs of the given clean (positive) and corrupted (negative) prompts, divided by their
// RMS, the SAE trained on them, the codes and the scores.
DsaeResult dsae_scores_on(const Model& m, const TaskPairs& task, const std::vector<int64_t>& positives,
                          const std::vector<int64_t>& negatives, const DsaeOptions& o);
// pick_examples then dsae_scores_on. Throws InputError (kBadInput) when fewer than 2 positives or
// 2 negatives exist.
DsaeResult dsae_scores(const Model& m, const TaskPairs& task, const DsaeOptions& o);

// The selected heads: the top_n first of the ranking (top_n > 0), else every head whose unique
// count is >= min_unique.
std::vector<int64_t> dsae_select(const DsaeResult& r, int64_t top_n, int64_t min_unique);

}  // namespace ms
