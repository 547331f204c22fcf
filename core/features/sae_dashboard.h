// Feature dashboards over a corpus, streaming: per feature a bounded top-k of (activation, prompt,
// position) with the window of that feature's activations around it, a fixed-bin histogram of
// the firing activations and the firing count, filled batch by batch, so no more than one batch
// of feature activations ([tokens, d_sae]) is ever held. Plus the feature's direct logit effects
// (W_dec[f] @ W_U^T, the final norm's scale ignored, as SAELens / SAEDashboard / Neuronpedia do).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "core/base/result.h"
#include "core/features/feature_card.h"
#include "core/features/sae.h"

namespace ms {

class Model;

struct DashboardOptions {
  std::vector<int64_t> features;  // the features to build cards for; empty: every feature
  int64_t top_features = 0;       // > 0: keep the cards of the N features firing most often
  int top_k = 20;                 // examples per feature
  int context = 8;                // window tokens on each side of the example's position
  int n_bins = 32;                // histogram bins
  int n_logits = 10;              // top and bottom logit effects
  bool skip_bos = true;           // leave out position 0 when it holds the model's BOS token
  int64_t batch_tokens = 0;       // positions per encoded batch; 0 chooses (about 2^25 activations)
};

using DashboardProgress = std::function<void(int64_t done, int64_t total)>;

// The streaming state of one feature set (exposed for tests and the benchmark).
struct DashboardStats {
  int64_t n_tokens = 0;       // positions counted
  int64_t n_batches = 0;
  int64_t peak_batch_tokens = 0;
};

// Where one row of an activation batch comes from: a prompt, a position in it, and the prompt's
// first row in the batch and its length (a window never leaves its prompt).
struct DashboardRow {
  int64_t prompt = 0, pos = 0;
  int64_t row0 = 0, len = 0;
};

// The streaming state: fed batches of activations [rows, features] of whole prompts in corpus
// order, it keeps per feature the firing count, the maximum, the histogram (its range the power of
// two above the maximum so far; when the range grows, bins merge pairwise, so the counts equal a
// histogram of everything over the final range) and the top_k examples with their windows.
class DashboardAccumulator {
 public:
  DashboardAccumulator(std::vector<int64_t> features, const DashboardOptions& opts);
  // acts: [rows, features.size()] float32 CPU contiguous; rows[r] says where row r is from; the
  // windows' token ids come from prompts.
  void add(const at::Tensor& acts, const std::vector<DashboardRow>& rows,
           const std::vector<std::vector<int32_t>>& prompts);
  // The card of features[i] (its examples moved out; labels empty) over n_tokens positions.
  FeatureCard card(size_t i, int64_t n_tokens);
  int64_t firing(size_t i) const { return m_count[i]; }

 private:
  DashboardOptions m_o;
  std::vector<int64_t> m_features;
  std::vector<std::vector<FeatureExample>> m_examples;  // per feature, ranked, at most top_k
  std::vector<int64_t> m_count, m_hist;
  std::vector<float> m_max, m_thr;
  std::vector<double> m_hmax;
};

// Builds the cards over the prompts (token ids, each within the model's n_ctx). Progress counts
// prompts; a cancel between batches returns the cards of what was seen (stats->n_tokens says how
// much). Errors (InputError): a feature index outside [0, d_sae) (kBadInput naming the SAE's
// source), an SAE that does not fit the model, an empty corpus. Cards are in the order of
// opts.features (ascending when every feature; by firing count, most first, with top_features).
std::vector<FeatureCard> feature_dashboards(const Model& model, const Sae& sae,
                                            const std::vector<std::vector<int32_t>>& prompts,
                                            const DashboardOptions& opts, const DashboardProgress& progress = {},
                                            const std::atomic<bool>* cancel = nullptr,
                                            DashboardStats* stats = nullptr);

// The direct logit effects of each feature in `features`: W_dec[f] @ W_U^T, the n largest and n
// smallest, labelled. The decoder must write model-width vectors (d_out == d_model: a residual,
// attn_out or mlp_out SAE or a transcoder into one); a hook_z SAE's direction goes through W_O of
// its layer first (SAEDashboard's to_resid_direction); otherwise the lists stay empty.
void fill_logit_effects(const Model& model, const Sae& sae, std::vector<FeatureCard>& cards, int n);

// The histogram bin of a firing activation a (> 0) over [0, hist_max) with n bins: what the
// streaming pass and any reference must agree on. hist_max(a) is the power of two above a.
int64_t dashboard_bin(float a, double hist_max, int n_bins);
double dashboard_hist_max(float max_act);

// The features most active at each position of one prompt (the workbench's Features view):
// [pos] -> up to n (feature, activation) pairs, strongest first, activation > 0.
std::vector<std::vector<std::pair<int64_t, float>>> prompt_top_features(const Model& model, const Sae& sae,
                                                                        const std::vector<int32_t>& ids, int n);

}  // namespace ms
