// Circuit records from the edge graph, and circuit-to-circuit comparison by names.
#include "storage/circuit_records.h"
#include "core/base/json_input.h"

#include <ATen/ATen.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace ms {

Circuit circuit_record(const CircuitGraph& g, const at::Tensor& kept, const at::Tensor& scores,
                       const std::string& name, const std::string& extra_meta) {
  Circuit c;
  c.name = name;
  at::Tensor k = kept.to(at::kBool).cpu(), s = scores.to(at::kDouble).cpu().nan_to_num(0.0);
  std::map<int, int> node_of;  // graph source (or -1 for the logits) -> record node index
  auto node = [&](int src) {
    auto it = node_of.find(src);
    if (it != node_of.end()) return it->second;
    CircuitNode n;
    if (src < 0) {
      n = {"logits", "logits", static_cast<int>(g.config().n_layers), -1, 0.0};
    } else {
      const GraphSource& gs = g.sources()[static_cast<size_t>(src)];
      n = {gs.name, src == 0 ? "embed" : gs.head >= 0 ? "head" : "mlp", gs.layer, gs.head, 0.0};
    }
    c.nodes.push_back(n);
    return node_of[src] = static_cast<int>(c.nodes.size()) - 1;
  };
  // One stored edge per (source, node): a head's q, k and v inputs from the same source share it
  // (the schema keeps edges unique by their two nodes); edge_targets lists the inputs, '|'-joined.
  std::map<std::pair<int, int>, size_t> edge_of;
  std::vector<std::string> targets;
  std::vector<nlohmann::json> target_scores;
  for (int t = 0; t < g.n_targets(); ++t)
    for (int src = 0; src < g.targets()[static_cast<size_t>(t)].n_upstream; ++src) {
      if (!k[t][src].item<bool>()) continue;
      int a = node(src), b = node(g.target_owner(t));
      double sc = s[t][src].item<double>();
      c.nodes[static_cast<size_t>(b)].score += std::fabs(sc);  // a node's score: |scores| of edges into it
      const std::string& tname = g.targets()[static_cast<size_t>(t)].name;
      auto it = edge_of.find({a, b});
      if (it == edge_of.end()) {
        edge_of[{a, b}] = c.edges.size();
        c.edges.push_back({a, b, sc});
        targets.push_back(tname);
        target_scores.push_back(nlohmann::json::array({sc}));
      } else {
        c.edges[it->second].score += sc;  // the sum over the head's inputs
        targets[it->second] += "|" + tname;
        target_scores[it->second].push_back(sc);
      }
    }
  nlohmann::json meta = nlohmann::json::parse(extra_meta.empty() ? "{}" : extra_meta);
  meta["edge_targets"] = targets;
  meta["edge_target_scores"] = target_scores;
  c.meta_json = meta.dump();
  return c;
}

namespace {

double iou(int64_t common, int64_t a, int64_t b) {
  int64_t uni = a + b - common;
  return uni == 0 ? NAN : static_cast<double>(common) / static_cast<double>(uni);
}

std::set<std::string> edge_keys(const Circuit& c) {
  std::vector<std::string> targets;
  try {
    nlohmann::json m = parse_json_or_discarded(c.meta_json);
    if (m.contains("edge_targets"))
      for (const auto& t : m["edge_targets"]) targets.push_back(t.get<std::string>());
  } catch (const std::exception&) {
  }
  std::set<std::string> out;
  for (size_t i = 0; i < c.edges.size(); ++i) {
    const CircuitEdge& e = c.edges[i];
    const std::string& src = c.nodes[static_cast<size_t>(e.src)].name;
    if (targets.size() != c.edges.size()) {
      out.insert(src + "->" + c.nodes[static_cast<size_t>(e.dst)].name);
      continue;
    }
    std::stringstream ss(targets[i]);
    std::string dst;
    while (std::getline(ss, dst, '|')) out.insert(src + "->" + dst);
  }
  return out;
}

}  // namespace

CircuitComparison compare_circuits(const Circuit& a, const Circuit& b) {
  CircuitComparison r;
  r.name_a = a.name;
  r.name_b = b.name;
  std::set<std::string> na, nb, ha, hb;
  for (const auto& n : a.nodes) {
    na.insert(n.name);
    if (n.kind == "head") ha.insert(n.name);
  }
  for (const auto& n : b.nodes) {
    nb.insert(n.name);
    if (n.kind == "head") hb.insert(n.name);
  }
  r.nodes_a = static_cast<int64_t>(na.size());
  r.nodes_b = static_cast<int64_t>(nb.size());
  for (const auto& n : na) r.nodes_common += nb.count(n);
  std::set<std::string> ea = edge_keys(a), eb = edge_keys(b);
  r.edges_a = static_cast<int64_t>(ea.size());
  r.edges_b = static_cast<int64_t>(eb.size());
  for (const auto& e : ea) r.edges_common += eb.count(e);
  r.node_iou = iou(r.nodes_common, r.nodes_a, r.nodes_b);
  r.edge_iou = iou(r.edges_common, r.edges_a, r.edges_b);
  int64_t hc = 0;
  for (const auto& h : ha) {
    if (hb.count(h)) ++hc;
    else r.heads_only_a.push_back(h);
  }
  for (const auto& h : hb)
    if (!ha.count(h)) r.heads_only_b.push_back(h);
  r.head_overlap = iou(hc, static_cast<int64_t>(ha.size()), static_cast<int64_t>(hb.size()));
  r.head_precision = ha.empty() ? NAN : static_cast<double>(hc) / static_cast<double>(ha.size());
  r.head_recall = hb.empty() ? NAN : static_cast<double>(hc) / static_cast<double>(hb.size());
  return r;
}

}  // namespace ms
