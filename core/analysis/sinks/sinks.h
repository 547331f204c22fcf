// Attention-sink analysis (StreamingLLM; Gu et al. "When Attention Sink Emerges"; ACT, Yu et al.
// 2024; massive activations, Sun et al. 2024) over a set of prompts, streamed block by block so
// that memory grows with T x heads, never T^2 x heads, and ACT's calibration as an intervention.
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/attention/attention_observer.h"
#include "core/base/head_ref.h"
#include "core/model/model.h"

namespace ms {

struct SinkOptions {
  double epsilon = 0.3;             // sink when alpha_k > epsilon (Gu et al.)
  bool hidden_relative = false;     // false: alpha_k > hidden_threshold (ACT's code, 0.1);
  double hidden_threshold = 0.1;    // true: alpha_k > hidden_threshold / T_visible (ACT's paper, 5)
  double massive_abs = 100.0;       // massive activation: |h| > massive_abs and
  double massive_ratio = 1000.0;    // |h| >= massive_ratio x the layer's median |h|
  int64_t max_tokens = 0;           // truncate prompts (0: no limit)
  int64_t attn_block = 0;           // query-block size (0: chosen by the forward pass)
  int64_t curve_positions = 64;     // sink-rate curve over the first positions
};

struct HiddenSink {
  int64_t prompt = 0, layer = 0, head = 0, position = 0;
  int32_t token_id = 0;
  std::string token;  // token_label (core/tokenizer/token_label.h): "<id>" without a tokenizer
  double alpha = 0;
};

struct MassiveActivation {
  int64_t prompt = 0, layer = 0, position = 0, dim = 0;
  int32_t token_id = 0;
  std::string token;
  double value = 0, ratio_to_median = 0;
};

struct SinkReport {
  int64_t n_prompts = 0, n_layers = 0, n_heads = 0;
  double sink_rate_first = 0;        // 100 x share of (prompt, layer, head) with alpha_0 > epsilon
  at::Tensor sink_rate_curve;        // (positions): the same for key position k
  at::Tensor head_alpha0;            // (layer, head): mean alpha_0 over prompts
  at::Tensor head_sink_rate;         // (layer, head): share of prompts with alpha_0 > epsilon
  at::Tensor head_sink_mass;         // (layer, head): attention on the first token plus the
                                     // hidden sinks, averaged over queries and prompts
  at::Tensor head_hidden_count;      // (layer, head): hidden sinks found, summed over prompts
  at::Tensor first_alpha;            // (prompt, layer, head, positions<=curve): alpha of the first keys
  std::vector<HiddenSink> hidden;
  std::vector<MassiveActivation> massive;
};

using Progress = std::function<void(int64_t done, int64_t total)>;

// Runs the model on each prompt (token ids) and measures everything above.
// Throws InputError on empty prompts; stops early (and says so) when cancel becomes true.
SinkReport analyze_sinks(const Model& model, const std::vector<std::vector<int32_t>>& prompts,
                         const SinkOptions& opts, const Progress& progress = {},
                         const std::atomic<bool>* cancel = nullptr);

// ACT's calibration as an attention edit: for the chosen heads, attention to the given hidden
// sink positions is multiplied by beta and the freed mass is given to the other visible keys in
// proportion to their attention; the first token is left untouched. beta = 1 is a no-op and
// rows still sum to 1.
class SinkCalibration : public AttentionObserver {
 public:
  SinkCalibration(std::vector<HeadRef> heads, std::vector<int64_t> sink_positions, double beta);
  bool wants_layer(int64_t layer) const override;
  void on_block(AttentionBlock& block) override;

 private:
  std::vector<HeadRef> m_heads;
  std::vector<int64_t> m_sinks;
  double m_beta;
};

}  // namespace ms
