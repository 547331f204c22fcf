// The node graph of circuit discovery (input, each head, each MLP, logits) and the edge-level
// forward pass: every target (a head's q, k or v input, an MLP's input, the logits' input) reads
// the residual stream plus its own offset, so single edges can be patched or differentiated.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "core/model/model.h"

namespace ms {

enum class TargetKind { kQ, kK, kV, kMlp, kLogits };
const char* target_kind_name(TargetKind k);  // "q", "k", "v", "mlp", "logits"

// A node whose output enters the residual stream.
struct GraphSource {
  std::string name;   // "input", "a1.3", "m2"
  int layer = -1;     // -1 for the input
  int head = -1;      // -1 unless a head
};

// A place that reads the residual stream. Under GQA, k and v targets are KV heads.
struct GraphTarget {
  std::string name;   // "a1.3<q>", "a1.1<k>" (KV head), "m2", "logits"
  TargetKind kind;
  int layer;          // n_layers for the logits
  int head = -1;      // query head for q, KV head for k/v
  int n_upstream = 0; // sources [0, n_upstream) feed it (sources are in topological order)
};

// Targets of one layer are grouped: q (n_heads), k (n_kv_heads), v (n_kv_heads), mlp (1); then one
// group for the logits. Offsets are given per group.
struct TargetGroup {
  TargetKind kind;
  int layer;
  int first = 0, count = 0;  // target indices [first, first + count)
};

class CircuitGraph {
 public:
  explicit CircuitGraph(const ModelConfig& cfg);
  const ModelConfig& config() const { return m_cfg; }
  const std::vector<GraphSource>& sources() const { return m_sources; }
  const std::vector<GraphTarget>& targets() const { return m_targets; }
  const std::vector<TargetGroup>& groups() const { return m_groups; }
  int n_sources() const { return static_cast<int>(m_sources.size()); }
  int n_targets() const { return static_cast<int>(m_targets.size()); }
  int head_source(int layer, int head) const;
  int mlp_source(int layer) const;  // -1 for attention-only models
  // The source a target belongs to (the head or MLP it feeds), -1 for the logits. Under GQA a
  // k/v target feeds every query head of its group; this returns the group's first query head.
  int target_owner(int target) const;
  // (target, source) pairs of every edge, targets in forward order.
  int64_t n_edges() const;
  std::vector<std::pair<int, int>> edges() const;
  const TargetGroup& group_of(TargetKind kind, int layer) const;

 private:
  ModelConfig m_cfg;
  std::vector<GraphSource> m_sources;
  std::vector<GraphTarget> m_targets;
  std::vector<TargetGroup> m_groups;
};

// Node outputs of a run: [n_sources, B, T, d_model] (input = token + position embeddings; a head
// = its hook_result; an MLP = hook_mlp_out). Detached, float32.
at::Tensor collect_source_outputs(const Model& model, const CircuitGraph& g, const at::Tensor& tokens);

// Offsets of one target group: [B, T, count, d_model] for q/k/v, [B, T, d_model] for an MLP or
// the logits, or an undefined tensor for none. `outputs` are this run's source outputs so far
// (entries [0, n_upstream) are set; not detached).
using OffsetFn = std::function<at::Tensor(const TargetGroup& group, const std::vector<at::Tensor>& outputs)>;

struct EdgeRunOptions {
  OffsetFn offsets;
  // Replaces the token embeddings (hook_embed) when defined: [B, T, d_model] (EAP-IG inputs).
  at::Tensor embed_override;
  bool last_logits_only = false;  // unembed the last position only
  // Gradient passes only (offsets are zero leaves): q/k/v keep the forward pass's own values and
  // each head's offset enters through a term that is zero in the forward pass and carries the
  // exact vector-Jacobian product of ln1 and that head's projection in the backward pass. Same
  // gradients, without recomputing q/k/v per head.
  bool linearized_heads = false;
  std::vector<at::Tensor>* outputs = nullptr;  // receives this run's source outputs (not detached)
};

// Runs the model on tokens with per-target offsets; returns logits [B, T, V].
at::Tensor run_edge_forward(const Model& model, const CircuitGraph& g, const at::Tensor& tokens,
                            const EdgeRunOptions& opts);

// Offsets that patch a set of edges: target t sees, for each removed source s, the corrupted
// output instead of this run's, i.e. offset_t = sum_s removed[t, s] * (corrupted_s - current_s).
// removed: [n_targets, n_sources] float (0/1). corrupted: collect_source_outputs of the
// corrupted run.
OffsetFn patch_edges_offsets(const CircuitGraph& g, const at::Tensor& removed, const at::Tensor& corrupted);

}  // namespace ms
