// What the workbench shows of one prompt: tokens, next-token predictions, attention patterns and a
// logit lens, computed in one forward pass on a background thread (never inside draw()).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/features/sae.h"
#include "core/model/model.h"
#include "runs/run_control.h"
#include "views/heatmap_data.h"

namespace ms::views {

struct Prediction {
  int32_t id = 0;
  std::string token;
  double prob = 0;
};

struct LensCell {
  int32_t id = 0;
  std::string token;
  float prob = 0;
  std::vector<std::pair<std::string, float>> top;  // the 5 most likely tokens (display text, p), best first
  int64_t next_rank = -1;  // the actual next token's rank (1 = top; -1 at the last position)
  float next_prob = -1;    // and its probability
};

struct ForwardResult {
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;   // display text per position (token_display: visible whitespace)
  std::string context_note;          // context_warning: the prompt is longer than the model's context
  std::vector<Prediction> top;       // next-token predictions after the last position
  int64_t n_layers = 0, n_heads = 0, n_pos = 0;
  // Attention patterns [query, key] (n_pos x n_pos, future keys NaN), index layer * n_heads + head;
  // null when not kept (long prompts keep only the requested head).
  std::vector<std::shared_ptr<const std::vector<float>>> patterns;
  // Heatmap pyramids and ranges of the kept patterns, built in the task for long prompts (> 256
  // tokens; null otherwise: the widget builds small ones itself).
  std::vector<std::shared_ptr<const PreparedHeatmap>> prepared;
  std::shared_ptr<const PreparedHeatmap> prepared_heatmap(int64_t layer, int64_t head) const;
  // Thumbnails of every head's pattern (the Attention window's all-heads grid), index
  // layer * n_heads + head: the pattern max-pooled to at most kThumbSide cells a side (factor 1 up
  // to kThumbSide tokens); null when not kept (long prompts keep those of the requested layer).
  static constexpr int kThumbSide = 128;
  std::vector<std::shared_ptr<const HeatLevel>> thumbs;
  std::shared_ptr<const HeatLevel> thumb(int64_t layer, int64_t head) const;
  // With ForwardRequest::head_means (the Text window's averages): the pattern averaged over the
  // heads of a layer ([query, key], n_pos x n_pos, future keys 0), index layer, null when not kept
  // (long prompts keep the requested layer's), and averaged over every head of every layer.
  // Computed while the pass streams, so a long prompt holds two extra matrices, never all heads.
  std::vector<std::shared_ptr<const std::vector<float>>> layer_means;
  std::shared_ptr<const std::vector<float>> all_heads_mean;
  std::shared_ptr<const std::vector<float>> layer_mean(int64_t layer) const;
  // Per head (layer * n_heads + head): alpha_0, the mean attention on the first token over the
  // queries that see it, query 0 included (Gu et al.; the sinks analysis' alpha0, AttentionStats).
  std::vector<double> alpha0;
  std::vector<LensCell> lens;        // logit lens, n_layers x n_pos (empty for long prompts)
  int64_t lens_positions = 0;
  // With an intervention (ablated and/or calibrated heads): the same predictions' probabilities
  // in a second pass with the intervention, and that pass's own top-k.
  std::vector<std::pair<int, int>> ablated;  // (layer, head)
  std::string intervention;                   // what the second pass changed, for people
  std::vector<double> top_prob_ablated;       // parallel to top
  std::vector<Prediction> top_ablated;
  // With an SAE (the Features view): the features most active at each position, strongest first.
  std::vector<std::vector<std::pair<int64_t, float>>> features;
  // With ForwardRequest::contributions (the Contributions window): per position of each prompt the
  // logit difference answer - wrong (the answer's own logit without a wrong token) and the
  // next-token loss (NaN at the last position), core/analysis/task_metrics.h; for the clean
  // prompt, the corrupted one (empty when none) and the clean one with the second pass's
  // intervention (empty when none).
  int32_t answer = -1, wrong = -1;   // resolved: answer -1 in the request is the top token at contrib_pos
  std::string answer_token, wrong_token;
  int64_t contrib_pos = -1;          // resolved position
  std::vector<Prediction> pos_top;   // the top predictions at contrib_pos (to pick an answer from)
  std::vector<int32_t> corrupted_ids;
  std::vector<std::string> corrupted_tokens;
  std::vector<double> diff_clean, diff_corrupted, diff_ablated;
  std::vector<double> loss_clean, loss_corrupted, loss_ablated;
  // Direct logit attribution of the clean prompt at contrib_pos to the same direction (core's
  // direct_logit_attribution: each part centred, divided by the final norm's scale and projected
  // on w_lnf * (W_U[answer] - W_U[wrong])): per head [layer * n_heads + head], per MLP (empty for
  // attention-only models), the embeddings, and the biases (ln_final and unembedding biases plus
  // each layer's attention output bias). They add up to dla_total, the model's logit (difference)
  // before soft-capping.
  std::vector<double> dla_heads, dla_mlp;
  double dla_embed = 0, dla_bias = 0, dla_total = 0;
  std::vector<std::string> dla_notes;
  // With ForwardRequest::cache_hook (the Activations window): that hook point's activation as the
  // model produced it (CPU float32, batch axis kept: what `forward --cache` writes) and as a
  // matrix, positions x (everything else flattened: d_model, neurons, head * d_head, head * key).
  std::string act_name, act_error;   // act_error: why nothing was cached
  at::Tensor act;
  std::shared_ptr<const std::vector<float>> act_matrix;
  int64_t act_rows = 0, act_cols = 0;
  std::vector<std::string> act_col_labels;  // "H2:5" with a head axis, else the index
  // The k positions where column `col` of act_matrix is largest, largest first.
  std::vector<std::pair<int64_t, float>> top_positions(int64_t col, int k) const;
  double seconds = 0;                // wall time of the forward pass
  std::shared_ptr<const std::vector<float>> pattern(int64_t layer, int64_t head) const;
};

struct ForwardRequest {
  std::vector<int32_t> ids;
  int64_t keep_layer = 0, keep_head = 0;  // always kept, whatever the prompt length
  int top_k = 10;
  int64_t max_full_floats = int64_t(1) << 24;  // keep every head's pattern up to this many floats
  std::vector<std::pair<int, int>> ablate;  // heads whose output (hook_z) is zeroed in a second pass
  // Heads calibrated in the second pass (ACT, core/analysis/sinks/sinks.h SinkCalibration): attention to their
  // hidden sinks (keys after the first with alpha_k > calibrate_threshold) scaled by beta.
  std::vector<std::pair<int, int>> calibrate;
  double beta = 0.4, calibrate_threshold = 0.1;
  // The Features view's SAE (null: none): top_features per position are reported; with
  // steer_feature >= 0 the second pass splices it and adds steer_value to that feature's
  // activation at every position (core/features/sae_splice.h steer_feature_hook).
  std::shared_ptr<const Sae> sae;
  int top_features = 3;
  int64_t steer_feature = -1;
  double steer_value = 0;
  // The Contributions window: per-position metrics of the clean prompt, corrupted_ids (empty:
  // none) and the intervention, and the direct logit attribution at contrib_pos (-1: the last) to
  // answer (-1: the top prediction there) minus wrong (-1: none, the answer's own logit).
  bool contributions = false;
  std::vector<int32_t> corrupted_ids;
  int32_t answer = -1, wrong = -1;
  int64_t contrib_pos = -1;
  std::string cache_hook;               // the Activations window: a hook point's exact name ("" none)
  bool head_means = false;              // the per-layer and all-heads averages (the Text window's)
  bool lens = true;                     // compute the logit lens (only the Logit lens window needs it)
  int64_t max_lens_positions = 256;
};

// Runs the model once; throws InputError for ids out of range or too long a prompt.
ForwardResult compute_forward(const Model& model, const ForwardRequest& req);

// Token ids of a prompt: through the tokenizer when the model has one (BOS as configured), else
// the text is a list of ids ("0 5 9" or "0,5,9"); throws InputError naming the bad item.
std::vector<int32_t> prompt_ids(const Model& model, const std::string& text);
// A token typed by the user: "#ID" (or a bare id for models without a tokenizer) is that id, else
// the text must encode to exactly one token (no BOS). Throws InputError saying what it became.
int32_t parse_token(const Model& model, const std::string& text);

// Writes the activations of `ids` at the hook points matching `pattern` (an exact name or a glob,
// "*" for all) as FOLDER/<hook name>.npy (core/io/npy.h), the files `mechscope forward --cache
// PATTERN --dump-dir FOLDER` writes. Each file is written atomically (a temporary file renamed into
// place), so a file is either whole or absent. With a control: its update(files written, total) after
// each file, and an interrupt stops between files (cancelled, the files written so far kept whole).
// Throws InputError when the folder cannot be made, nothing matches or a file cannot be written.
struct NpyExport {
  std::vector<std::string> paths;  // written, in hook-name order
  int64_t total = 0;               // hook points matched
  bool cancelled = false;
};
NpyExport export_cache_npy(const Model& model, const std::vector<int32_t>& ids, const std::string& pattern,
                           const std::string& folder, RunControl* control = nullptr);

// Tokens are shown with ms::token_label (core/tokenizer/token_label.h), as the CLI stores them.

}  // namespace ms::views
