// A feature dashboard ("feature card") as plain data: what core computes (sae_dashboard.h),
// storage keeps (tables feature_cards / feature_examples) and reports and views show. No ATen.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace ms {

// One top-activating context: the token window around the position where the feature fired.
struct FeatureExample {
  int rank = 0;                      // 0 = the strongest
  int64_t prompt = 0;                // index of the prompt (sequence) in the corpus
  int64_t position = 0;              // token position within the prompt
  float activation = 0;              // the feature's activation there
  int64_t window_start = 0;          // position of token_ids[0] within the prompt
  std::vector<int32_t> token_ids;    // the window: [window_start, window_start + size)
  std::vector<std::string> tokens;   // display labels (token_label), same length
  std::vector<float> acts;           // the feature's activation at each window token
};

// One entry of a logit-effect list: the direct effect of the feature's decoder direction on a
// token's logit (W_dec[f] . W_U[:, token]).
struct LogitEffect {
  int32_t token_id = 0;
  std::string token;
  float value = 0;
};

struct FeatureCard {
  int64_t feature = 0;
  int64_t n_tokens = 0;     // positions seen
  int64_t n_firing = 0;     // positions where the activation > 0
  float max_act = 0;        // the largest activation (0 when it never fired)
  // Histogram of the firing (> 0) activations: histogram.size() equal bins over [0, hist_max);
  // hist_max is a power of two above max_act (0 when it never fired).
  double hist_max = 0;
  std::vector<int64_t> histogram;
  std::vector<LogitEffect> top_logits, bottom_logits;  // largest first / smallest first
  std::vector<FeatureExample> examples;                // by rank

  double density() const { return n_tokens > 0 ? static_cast<double>(n_firing) / static_cast<double>(n_tokens) : 0.0; }
  // log10 of the firing density (Neuronpedia's and SAELens' sparsity axis); -inf when dead.
  double log10_density() const { return n_firing > 0 ? std::log10(density()) : -INFINITY; }
};

}  // namespace ms
