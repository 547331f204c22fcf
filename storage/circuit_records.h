// Circuits as stored records (storage/records.h Circuit) from the edge graph of circuit
// discovery, and the comparison of two stored circuits: node and edge IoU, heads in one only.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "core/analysis/circuits/circuit_graph.h"
#include "storage/records.h"

namespace ms {

// The kept edges ([n_targets, n_sources] bool) with their scores ([n_targets, n_sources]) as a
// Circuit: nodes are the sources and the logits the edges touch; an edge runs from its source to
// the node its target feeds (one edge per node pair: a head's q/k/v inputs from one source share
// it, its score the sum), and meta_json's "edge_targets" names each edge's target inputs
// ("a1.3<q>|a1.3<k>", "m2", "logits") with "edge_target_scores", in edge order. extra_meta (a
// JSON object) is merged into meta_json.
Circuit circuit_record(const CircuitGraph& g, const at::Tensor& kept, const at::Tensor& scores,
                       const std::string& name, const std::string& extra_meta = "{}");

struct CircuitComparison {
  std::string name_a, name_b;
  int64_t nodes_a = 0, nodes_b = 0, nodes_common = 0;
  int64_t edges_a = 0, edges_b = 0, edges_common = 0;
  double node_iou = 0, edge_iou = 0;   // |A and B| / |A or B|; NaN when both are empty
  double head_overlap = 0;             // in-circuit heads: |A and B| / |A or B|
  // Heads, B taken as the reference: |A and B| / |A| and |A and B| / |B| (NaN when empty).
  double head_precision = 0, head_recall = 0;
  std::vector<std::string> heads_only_a, heads_only_b;
};
// Edges are identified by source name and target input name (edge_targets), else by the names
// of their two nodes.
CircuitComparison compare_circuits(const Circuit& a, const Circuit& b);

}  // namespace ms
