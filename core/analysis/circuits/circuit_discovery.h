// Circuit discovery on the edge graph of circuit_graph.h: edge attribution patching (EAP),
// EAP-IG over the input embeddings, exact edge patching (the reference EAP approximates), ACDC,
// circuit selection (top-n, threshold) and faithfulness.
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "core/analysis/circuits/circuit_graph.h"
#include "core/analysis/circuits/circuit_task.h"

namespace ms {

// done, total; called as work proceeds.
using CircuitProgress = std::function<void(int64_t done, int64_t total)>;

// The clean and corrupted runs every method starts from.
struct TaskRuns {
  at::Tensor clean_out, corrupted_out;  // collect_source_outputs: [S, B, T, d]
  at::Tensor clean_logits;              // [B, T, V]
  double metric_clean = 0, metric_corrupted = 0;
};
TaskRuns run_task(const Model& model, const CircuitGraph& g, const TaskPairs& task);

// Edge scores: [n_targets, n_sources] float64, NaN where there is no edge. A score estimates
// metric(edge patched from the corrupted run) - metric(clean).
struct EdgeScores {
  std::string method;  // "eap", "eap-ig", "exact", "acdc"
  at::Tensor scores;
  double metric_clean = 0, metric_corrupted = 0;
};

// EAP: one forward and one backward on the clean run; ig_steps > 0 gives EAP-IG (gradients
// averaged over ig_steps interpolations of the input embeddings, corrupted -> clean). Only
// runs.corrupted_out is required: without runs.clean_out the clean outputs are taken from the
// gradient pass itself (EAP) or collected (EAP-IG).
EdgeScores edge_attribution(const Model& model, const CircuitGraph& g, const TaskPairs& task,
                            const TaskRuns& runs, int ig_steps = 0);

// Exact edge patching: one patched forward per edge (edges: (target, source) pairs; empty means
// every edge). Scores of edges not listed are NaN.
EdgeScores exact_edge_patching(const Model& model, const CircuitGraph& g, const TaskPairs& task,
                               const TaskRuns& runs, const std::vector<std::pair<int, int>>& edges = {},
                               const CircuitProgress& progress = {}, const std::atomic<bool>* cancel = nullptr);

// The metric of the clean run with the removed edges ([n_targets, n_sources], 1 = patched from
// the corrupted run) patched.
double patched_metric(const Model& model, const CircuitGraph& g, const TaskPairs& task, const TaskRuns& runs,
                      const at::Tensor& removed);

struct AcdcOptions {
  double tau = 0.01;
  bool kl = true;  // false: the loss is -metric (logit difference / probability difference)
};
// ACDC (Conmy et al.): targets in reverse topological order, each target's incoming edges from
// the latest source back; an edge is removed when that raises the loss by less than tau.
// Returns scores = the loss increase measured when each edge was tried (NaN for edges removed
// without a test because their target's node no longer reached the logits) and the kept edges.
struct AcdcResult {
  EdgeScores scores;
  at::Tensor kept;       // [n_targets, n_sources] bool
  int64_t n_tested = 0;
  double final_loss = 0;
};
AcdcResult acdc(const Model& model, const CircuitGraph& g, const TaskPairs& task, const TaskRuns& runs,
                const AcdcOptions& opts, const CircuitProgress& progress = {},
                const std::atomic<bool>* cancel = nullptr);

// Edge masks ([n_targets, n_sources] bool) from scores by |score|: the n largest, or every edge
// with |score| >= threshold. Edges into a node that no longer reaches the logits are pruned.
at::Tensor select_top_n(const CircuitGraph& g, const at::Tensor& scores, int64_t n);
at::Tensor select_threshold(const CircuitGraph& g, const at::Tensor& scores, double threshold);
at::Tensor prune_dangling(const CircuitGraph& g, at::Tensor kept);
// A mask with every edge of the graph set.
at::Tensor all_edges(const CircuitGraph& g);

struct Faithfulness {
  double metric_circuit = 0, metric_clean = 0, metric_corrupted = 0;
  double faithfulness = 0;   // metric_circuit / metric_clean
  double normalized = 0;     // (metric_circuit - corrupted) / (clean - corrupted)
  int64_t n_edges = 0, n_nodes = 0, n_edges_total = 0;
};
// Every edge outside the circuit patched from the corrupted run.
Faithfulness evaluate_circuit(const Model& model, const CircuitGraph& g, const TaskPairs& task,
                              const TaskRuns& runs, const at::Tensor& kept);

// Nodes a circuit touches (sources with an edge out, owners of targets with an edge in, logits).
std::vector<std::string> circuit_nodes(const CircuitGraph& g, const at::Tensor& kept);

// Spearman rank correlation of two equal-length vectors (average ranks for ties).
double spearman(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace ms
