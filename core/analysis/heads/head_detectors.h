// Attention-head detectors with TransformerLens' head_detector semantics (previous-token,
// duplicate-token and induction detection patterns; "mul" and "abs" error measures; exclude_bos
// and exclude_current_token), and Gu et al.'s first-token sink metric alpha_k. Every score is read
// from the attention observer (core/attention/), one layer's whole pattern at a time (the same
// numbers as blocks.*.attn.hook_pattern), and is a [layer, head] float64 tensor averaged over a
// batch of sequences.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>

#include "core/model/model.h"
#include "core/base/result.h"

namespace ms {

enum class HeadPattern { kPreviousToken, kDuplicateToken, kInduction };
enum class ErrorMeasure {
  kMul,  // sum(A * D) / sum(A): the share of the head's attention that lands where D has ones
  kAbs,  // 1 - mean(|A - D|) * T: 1 only for a head whose pattern is exactly D
};

struct DetectOptions {
  bool exclude_bos = false;            // ignore attention to position 0 (A[:, 0] = 0)
  bool exclude_current_token = false;  // ignore attention of each query to itself (diagonal)
  ErrorMeasure error_measure = ErrorMeasure::kMul;
};

// TransformerLens' names: "previous_token_head", "duplicate_token_head", "induction_head".
Result<HeadPattern> parse_head_pattern(const std::string& name);
const char* head_pattern_name(HeadPattern p);

// The detection pattern D of a token sequence, [T] -> [T, T] (or [B, T] -> [B, T, T]), float32,
// lower-triangular, query on rows and key on columns:
//   previous token:  D[i, i-1] = 1;
//   duplicate token: D[i, j] = 1 for j < i with tokens[j] == tokens[i];
//   induction:       D[i, j] = 1 for 0 < j <= i with tokens[j-1] == tokens[i] (the token after
//                    an earlier occurrence of the current one).
at::Tensor detection_pattern(HeadPattern pattern, const at::Tensor& tokens);

// Similarity of attention patterns A [B, H, T, T] to detection patterns D [B, T, T] (or [T, T],
// shared by the batch): [B, H] float64, per sequence and head.
at::Tensor pattern_similarity(const at::Tensor& attn, const at::Tensor& detection,
                              const DetectOptions& opts = {});

// Scores of every head, [n_layers, n_heads] float64, the mean over the batch of sequences
// tokens [B, T] (or [T]) of pattern_similarity against the pattern built from each sequence.
Result<at::Tensor> detect_heads(const Model& model, const at::Tensor& tokens, HeadPattern pattern,
                                const DetectOptions& opts = {});
// The same against caller-made detection patterns, [B, T, T] or [T, T].
Result<at::Tensor> detect_heads(const Model& model, const at::Tensor& tokens,
                                const at::Tensor& detection, const DetectOptions& opts = {});

// Gu et al.'s alpha_k per head, [n_layers, n_heads] float64: the attention paid to key position k
// averaged over the queries that can see it (t >= k, and within the sliding window when there is
// one: AttentionStats::alpha's definition) and over the batch. A head is a first-token
// attention sink when alpha_0 exceeds epsilon (0.3 in their paper).
Result<at::Tensor> attention_to_position(const Model& model, const at::Tensor& tokens, int64_t k = 0);

// Repeated random token sequences for the detectors (`mechscope heads`, the workbench): n rows of
// [BOS] r_1..r_s r_1..r_s with s = seq_len distinct ids drawn from [lo, hi) (hi < 0: the
// vocabulary) with the seed; BOS (the tokenizer's, else the config's) unless no_bos or there is
// none. Each token's earlier occurrence is exactly one, so duplicate and induction patterns are
// unambiguous. [n, T] int64; bad sizes are kUsage errors naming the option.
Result<at::Tensor> repeated_sequences(const Model& model, int64_t seq_len, int64_t n, uint64_t seed,
                                      int64_t lo = 0, int64_t hi = -1, bool no_bos = false);

// Runs the model once with an attention observer that sees each layer's pattern as one block;
// per_layer(layer, A [B, H, T, T] float32 on the CPU, equal to hook_pattern) returns that layer's
// [H] scores, so no layer's pattern outlives its own block. Returns [n_layers, n_heads] float64.
// Every per-head pattern score here is built on it.
at::Tensor score_layers(const Model& model, const at::Tensor& tokens,
                        const std::function<at::Tensor(int64_t, const at::Tensor&)>& per_layer);

// The attention patterns of one layer, [B, H, T, T] float32 (a forward pass up to that layer).
Result<at::Tensor> layer_attention(const Model& model, const at::Tensor& tokens, int64_t layer);

}  // namespace ms
