// Activation patching (TransformerLens patching utilities), path patching (Wang et al.) and direct
// logit attribution with the final norm's scale applied as TransformerLens' apply_ln_to_stack.
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <string>
#include <vector>

#include "core/analysis/circuits/circuit_discovery.h"
#include "core/analysis/circuits/circuit_task.h"
#include "core/model/model.h"

namespace ms {

// A patching grid. values = (m - m_corrupted) / (m_clean - m_corrupted) after patching the clean
// activation into the corrupted run (1: the cell restores the clean behaviour, 0: no effect).
struct PatchGrid {
  std::string what;                 // resid_pre | attn_out | mlp_out | z | q | k | v | pattern
  at::Tensor values;                // normalised, float64
  at::Tensor raw;                   // the metric itself
  std::vector<std::string> axes;    // e.g. {"layer", "position"}, {"layer", "head"}, {"layer", "head", "position"}
  double metric_clean = 0, metric_corrupted = 0;
};

struct PatchOptions {
  std::string what = "resid_pre";
  bool per_position = false;  // z: [layer, head, position] instead of [layer, head]
  // The run patched into and the run patched from (default: corrupted <- clean). Setting both
  // to the clean tokens is the self-patching check (every cell scores 1).
  bool self_patch = false;
};

// One patched forward per cell. k and v index KV heads under grouped-query attention; q, z and
// pattern query heads. Errors: kUsage for an unknown `what` or a model without MLPs (mlp_out).
Result<PatchGrid> activation_patching(const Model& model, const TaskPairs& task, const PatchOptions& opts,
                                      const CircuitProgress& progress = {},
                                      const std::atomic<bool>* cancel = nullptr);

// Path patching: for every head upstream of all receivers, the clean run with that head's direct
// path into the receivers' inputs (targets of the graph: q/k/v inputs, MLPs, the logits) patched
// from the corrupted run; everything else on the path is frozen to clean (MLPs included).
// Returns [n_layers, n_heads] of (m - m_corrupted) / (m_clean - m_corrupted) (1: no effect),
// NaN for heads not upstream of every receiver.
at::Tensor path_patching(const Model& model, const CircuitGraph& g, const TaskPairs& task, const TaskRuns& runs,
                         const std::vector<int>& receivers);

// Direct logit attribution on the clean prompts for answer minus distractor (for greater-than:
// the mean unembedding of years > YY minus years <= YY), averaged over pairs. Each component is
// centred (LayerNorm) and divided by the final norm's scale at that position, then projected on
// the direction w_lnf * (W_U[answer] - W_U[distractor]); a negative distractor scores the answer's
// own logit (direction w_lnf * W_U[answer]; the workbench's Contributions window). On pre-norm models
// the parts add up:
// embed + sum over layers of (attn + mlp) + bias_terms = logit_diff, and a layer's heads sum to its
// attn component less the attention output bias (b_O).
struct DlaResult {
  at::Tensor per_head;                     // [n_layers, n_heads] float64
  std::vector<std::string> components;     // "embed", "attn0", "mlp0", ...
  std::vector<double> per_component;
  double logit_diff = 0;                   // the model's (direction-projected) logit difference
  double bias_terms = 0;                   // ln_final bias and unembedding bias contributions
  // What the numbers mean on models that are not plain pre-norm ones (empty otherwise): per-head
  // attributions through a post-norm (OLMo 2, Gemma: each head's output times ln1_post's weight
  // over its scale, frozen at the clean run, so the heads sum to the attention output), and, with
  // final logit soft-capping (Gemma 2), that attributions and logit_diff are before the cap.
  std::vector<std::string> notes;
  double capped_logit_diff = 0;            // with final soft-capping: the model's capped difference
};
DlaResult direct_logit_attribution(const Model& model, const TaskPairs& task);

}  // namespace ms
