// Attention-output SAEs by head (Kissane et al., "Interpreting Attention Layer Outputs with Sparse
// Autoencoders"): an SAE on blocks.L.attn.hook_z (heads concatenated, SAELens' reshape_activations
// hook_z) reads z = [z_0 | z_1 | ..], so each feature's pre-activation is a sum of one term per head
// plus a constant (direct feature attribution by head). This file splits it per position and
// accumulates, over a corpus, the share of each feature's activation each head writes, its
// dominant head, and per head the number of features it dominates (a polysemanticity estimate).
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/base/result.h"
#include "core/features/sae.h"

namespace ms {

class Model;

// OK when sae reads a whole hook_z point of n_heads heads of d_head (not a transcoder, not one
// head); else kBadInput naming the SAE's file and what it is instead.
Status check_head_sae(const Sae& sae, int64_t n_heads, int64_t d_head);

// The split of every position's pre-activation (the magnitude path's for gated SAEs):
//   acts_pre[r, f] = sum_h per_head[r, f, h] + bias[f]
// with per_head[r, f, h] = xn[r, h-slice] . W[h-slice, f], xn the input after the SAE's runtime
// normalisation (constant_norm_rescale and layer_norm are per-position affine, so they distribute
// over the slices), W the encoder (W_enc * exp(r_mag) for gated) and bias = b_enc (b_mag) -
// b_dec . W[:, f] (apply_b_dec_to_input: b_dec is a constant, not written by any head, so a silent
// head gets 0). For an active feature the activation equals acts_pre (relu, JumpReLU, topk and the
// gate all pass it through unchanged). Computed in float64.
struct HeadSplit {
  at::Tensor per_head;  // [rows, d_sae, n_heads] float64
  at::Tensor bias;      // [d_sae] float64
  at::Tensor acts_pre;  // [rows, d_sae] float64: per_head.sum(-1) + bias
  at::Tensor acts;      // [rows, d_sae] float32: the SAE's own activations (Sae::run)
};
// x [rows, d_in] (hook_z flattened). Needs check_head_sae.
HeadSplit split_by_head(const Sae& sae, const at::Tensor& x, int64_t n_heads);

struct SaeHeadsOptions {
  bool skip_bos = true;         // leave out position 0 when it holds the model's BOS token
  int64_t min_firing = 1;       // a feature counts (is live) when it fires on at least this many positions
  double dominance = 0.5;       // a head dominates a feature when it writes at least this share of
                                // the feature's positive head attribution
  int64_t polysemantic_min = 2; // a head dominating at least this many features is counted polysemantic
};

// Over a corpus. Head attribution of a feature = the sum, over the positions where it fires, of
// each head's term; its fraction = that over the sum of the feature's activations (fractions and
// bias_fraction sum to 1). The dominant head has the largest attribution; its share is its
// attribution over the sum of the positive head attributions.
struct SaeHeadsResult {
  int64_t layer = -1, n_heads = 0, d_sae = 0;
  int64_t n_tokens = 0;          // positions counted
  at::Tensor n_firing;           // [d_sae] int64
  at::Tensor act_sum;            // [d_sae] float64: sum of activations where firing
  at::Tensor head_attribution;   // [d_sae, n_heads] float64: sum of each head's term where firing
  at::Tensor head_fraction;      // [d_sae, n_heads] float64: head_attribution / act_sum (0 for dead features)
  at::Tensor bias_fraction;      // [d_sae] float64
  at::Tensor dominant_head;      // [d_sae] int64: -1 for features that are not live
  at::Tensor dominant_share;     // [d_sae] float64
  at::Tensor decoder_fraction;   // [d_sae, n_heads] float64: |W_dec[f, h-slice]|^2 / |W_dec[f]|^2 (weight-based)
  at::Tensor dominated;          // [n_heads] int64: live features each head dominates
  at::Tensor activation_share;   // [n_heads] float64: the head's attribution summed over features / all activation
  int64_t n_live = 0;            // features firing >= min_firing times
  int64_t n_dominated = 0;       // live features some head dominates
  int64_t n_polysemantic = 0;    // heads dominating >= polysemantic_min features
  double max_sum_error = 0;      // max over live features |sum_h attribution + bias - act_sum| / act_sum
};

// Runs the model to the SAE's layer over the prompts (token ids, one forward per prompt) and
// accumulates. progress counts prompts; a set cancel flag stops between prompts (result has what
// was seen). Throws InputError for an SAE that does not fit (check_head_sae).
SaeHeadsResult sae_heads(const Model& m, const Sae& sae, const std::vector<std::vector<int32_t>>& prompts,
                         const SaeHeadsOptions& o, const std::function<void(int64_t, int64_t)>& progress = nullptr,
                         const std::atomic<bool>* cancel = nullptr);

}  // namespace ms
