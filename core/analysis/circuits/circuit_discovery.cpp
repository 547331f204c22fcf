// EAP and EAP-IG (one backward per step through zero offsets on every target), exact edge
// patching, patched metrics, circuit selection and faithfulness. ACDC is in circuit_acdc.cpp.
#include "core/analysis/circuits/circuit_discovery.h"
#include "core/base/parallel.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace ms {

TaskRuns run_task(const Model& model, const CircuitGraph& g, const TaskPairs& task) {
  at::NoGradGuard no_grad;
  TaskRuns r;
  r.clean_out = collect_source_outputs(model, g, task.clean);
  r.corrupted_out = collect_source_outputs(model, g, task.corrupted);
  r.clean_logits = model.forward(task.clean);
  r.metric_clean = task_metric(task, r.clean_logits).item<double>();
  r.metric_corrupted = task_metric(task, model.forward(task.corrupted)).item<double>();
  return r;
}

namespace {

at::Tensor nan_scores(const CircuitGraph& g) {
  return at::full({g.n_targets(), g.n_sources()}, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
}

// d metric / d (input of every target) at one run, as one tensor per target group.
// outputs (optional) receives the run's source outputs, detached, one [B, T, d] per source.
std::vector<at::Tensor> target_gradients(const Model& model, const CircuitGraph& g, const TaskPairs& task,
                                         const at::Tensor& embed_override,
                                         std::vector<at::Tensor>* outputs = nullptr) {
  const auto& groups = g.groups();
  std::vector<at::Tensor> leaves(groups.size());
  const int64_t B = task.n(), T = task.seq_len(), d = model.config().d_model;
  EdgeRunOptions o;
  o.embed_override = embed_override;
  o.offsets = [&](const TargetGroup& grp, const std::vector<at::Tensor>&) {
    size_t gi = 0;
    while (groups[gi].first != grp.first) ++gi;
    std::vector<int64_t> shape = grp.kind == TargetKind::kMlp || grp.kind == TargetKind::kLogits
                                     ? std::vector<int64_t>{B, T, d}
                                     : std::vector<int64_t>{B, T, grp.count, d};
    leaves[gi] = at::zeros(shape, at::kFloat).set_requires_grad(true);
    return leaves[gi];
  };
  // When every pair is scored at the last position only that position is unembedded.
  bool last_only = true;
  for (int64_t p : task.answer_pos) last_only = last_only && p == T - 1;
  TaskPairs last_task;
  if (last_only) {
    last_task = task;
    last_task.answer_pos.assign(task.answer_pos.size(), 0);
  }
  o.last_logits_only = last_only;
  o.linearized_heads = true;
  std::vector<at::Tensor> run_outputs;
  o.outputs = outputs ? &run_outputs : nullptr;
  c10::AutoGradMode grad_on(true);
  at::Tensor metric = task_metric(last_only ? last_task : task, run_edge_forward(model, g, task.clean, o));
  if (outputs) {
    outputs->clear();
    for (const auto& x : run_outputs) outputs->push_back(x.detach());
  }
  std::vector<at::Tensor> inputs;
  for (const auto& l : leaves) inputs.push_back(l);
  std::vector<at::Tensor> grads = torch::autograd::grad({metric}, inputs, {}, false, false, true);
  for (size_t i = 0; i < grads.size(); ++i)
    if (!grads[i].defined()) grads[i] = at::zeros_like(leaves[i]);
  return grads;
}

// a (m, K) x b (n, K)^T for a long inner dimension K (B * T * d_model) and few rows (a layer's
// targets, its upstream sources): the threads take slices of K, each one product of its slice on
// one thread, and the partial (m, n) results are added in slice order. BLAS threads such a
// product over m and n, which are too small to keep two cores at their GEMM rate.
at::Tensor long_inner_product(const at::Tensor& a, const at::Tensor& b) {
  const int64_t K = a.size(1), slices = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), K / 4096));
  if (slices == 1) return at::mm(a, b.t());
  const int64_t step = (K + slices - 1) / slices;
  std::vector<at::Tensor> part(static_cast<size_t>(slices));
  ms::parallel_for(0, slices, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t k0 = i * step, n = std::min(step, K - k0);
      part[static_cast<size_t>(i)] = at::mm(a.narrow(1, k0, n), b.narrow(1, k0, n).t());
    }
  });
  at::Tensor out = part[0];
  for (size_t i = 1; i < part.size(); ++i) out.add_(part[i]);
  return out;
}

}  // namespace

EdgeScores edge_attribution(const Model& model, const CircuitGraph& g, const TaskPairs& task,
                            const TaskRuns& runs, int ig_steps) {
  EdgeScores out;
  out.method = ig_steps > 0 ? "eap-ig" : "eap";
  out.metric_clean = runs.metric_clean;
  out.metric_corrupted = runs.metric_corrupted;
  std::vector<at::Tensor> grads;
  at::Tensor clean_out = runs.clean_out;
  std::vector<at::Tensor> clean_list;  // the gradient pass's own source outputs, when used
  if (ig_steps <= 0) {
    // The clean outputs come from the gradient pass itself when the caller has none.
    grads = target_gradients(model, g, task, at::Tensor(), clean_out.defined() ? nullptr : &clean_list);
  } else {
    at::Tensor e_clean = at::embedding(model.weights().w_e, task.clean.to(model.device())).to(at::kFloat);
    at::Tensor e_corr = at::embedding(model.weights().w_e, task.corrupted.to(model.device())).to(at::kFloat);
    if (!clean_out.defined()) clean_out = collect_source_outputs(model, g, task.clean);
    for (int k = 1; k <= ig_steps; ++k) {
      double alpha = static_cast<double>(k) / ig_steps;
      std::vector<at::Tensor> gk = target_gradients(model, g, task, e_corr + alpha * (e_clean - e_corr));
      if (grads.empty()) grads = gk;
      else for (size_t i = 0; i < gk.size(); ++i) grads[i] = grads[i] + gk[i];
    }
    for (auto& x : grads) x = x / ig_steps;
  }
  at::NoGradGuard no_grad;
  at::Tensor delta;  // (S, B, T, d)
  if (clean_out.defined()) {
    delta = runs.corrupted_out - clean_out;
  } else {  // corrupted - clean per source, without stacking the clean outputs first
    delta = at::empty_like(runs.corrupted_out);
    for (size_t s = 0; s < clean_list.size(); ++s) {
      at::Tensor row = delta[static_cast<int64_t>(s)];
      at::sub_out(row, runs.corrupted_out[static_cast<int64_t>(s)], clean_list[s]);
    }
  }
  out.scores = nan_scores(g);
  // Products as GEMMs: (targets, B*T*d) x (B*T*d, upstream sources), the groups that share an
  // upstream prefix (a layer's q, k and v) stacked into one call.
  const auto& groups = g.groups();
  const int64_t btd = delta[0].numel();
  at::Tensor delta_mat = delta.view({delta.size(0), btd});
  for (size_t gi = 0; gi < groups.size();) {
    // Groups whose upstream counts differ by at most an eighth (a layer's MLP and the next layer's
    // q, k and v: 13 l + 13 and 13 l + 14 sources in GPT-2) share one product over the larger
    // count, so that delta is read once for both; each keeps its own columns.
    auto n_up_of = [&](size_t gk) { return g.targets()[static_cast<size_t>(groups[gk].first)].n_upstream; };
    const int n_up0 = n_up_of(gi);
    size_t gj = gi;
    int64_t n_rows = 0;
    int n_up = n_up0;
    while (gj < groups.size() && n_up_of(gj) <= n_up0 + 1 + n_up0 / 8) {
      n_up = std::max(n_up, n_up_of(gj));
      n_rows += groups[gj++].count;
    }
    // The groups' gradients, each (B, T, n, d), copied once into the rows (n, B*T*d) of one matrix.
    at::Tensor rows = at::empty({n_rows, btd}, at::kFloat);
    for (size_t gk = gi, r = 0; gk < gj; r += static_cast<size_t>(groups[gk].count), ++gk) {
      at::Tensor gr = grads[gk];
      if (gr.dim() == 3) gr = gr.unsqueeze(2);  // (B, T, n, d)
      rows.narrow(0, static_cast<int64_t>(r), groups[gk].count)
          .view({groups[gk].count, gr.size(0), gr.size(1), gr.size(3)})
          .copy_(gr.permute({2, 0, 1, 3}));
    }
    const at::Tensor sc = long_inner_product(rows, delta_mat.narrow(0, 0, n_up)).to(at::kDouble);  // (rows, n_up)
    for (size_t gk = gi, r = 0; gk < gj; r += static_cast<size_t>(groups[gk].count), ++gk)
      out.scores.narrow(0, groups[gk].first, groups[gk].count)
          .narrow(1, 0, n_up_of(gk))
          .copy_(sc.narrow(0, static_cast<int64_t>(r), groups[gk].count).narrow(1, 0, n_up_of(gk)));
    gi = gj;
  }
  return out;
}

EdgeScores exact_edge_patching(const Model& model, const CircuitGraph& g, const TaskPairs& task,
                               const TaskRuns& runs, const std::vector<std::pair<int, int>>& edges_in,
                               const CircuitProgress& progress, const std::atomic<bool>* cancel) {
  at::NoGradGuard no_grad;
  EdgeScores out;
  out.method = "exact";
  out.metric_clean = runs.metric_clean;
  out.metric_corrupted = runs.metric_corrupted;
  out.scores = nan_scores(g);
  std::vector<std::pair<int, int>> edges = edges_in.empty() ? g.edges() : edges_in;
  at::Tensor delta = runs.corrupted_out - runs.clean_out;
  const int64_t total = static_cast<int64_t>(edges.size());
  for (int64_t i = 0; i < total; ++i) {
    if (cancel && *cancel) break;
    // Plain variables, not a structured binding: lambdas below capture them (C++17 clang refuses
    // to capture bindings).
    const auto t = edges[static_cast<size_t>(i)].first;
    const auto s = edges[static_cast<size_t>(i)].second;
    const GraphTarget& tg = g.targets()[static_cast<size_t>(t)];
    // Nothing upstream of the target changes, so its sources keep their clean outputs and the
    // patched input is the clean one plus (corrupted - clean) of the one source.
    EdgeRunOptions o;
    o.offsets = [&](const TargetGroup& grp, const std::vector<at::Tensor>&) -> at::Tensor {
      if (t < grp.first || t >= grp.first + grp.count) return at::Tensor();
      at::Tensor d = delta[s];
      if (tg.kind == TargetKind::kMlp || tg.kind == TargetKind::kLogits) return d;
      at::Tensor off = at::zeros({d.size(0), d.size(1), grp.count, d.size(2)}, d.options());
      off.select(2, t - grp.first).copy_(d);
      return off;
    };
    double m = task_metric(task, run_edge_forward(model, g, task.clean, o)).item<double>();
    out.scores[t][s] = m - runs.metric_clean;
    if (progress) progress(i + 1, total);
  }
  return out;
}

double patched_metric(const Model& model, const CircuitGraph& g, const TaskPairs& task, const TaskRuns& runs,
                      const at::Tensor& removed) {
  at::NoGradGuard no_grad;
  EdgeRunOptions o;
  o.offsets = patch_edges_offsets(g, removed, runs.corrupted_out);
  return task_metric(task, run_edge_forward(model, g, task.clean, o)).item<double>();
}

at::Tensor all_edges(const CircuitGraph& g) {
  at::Tensor m = at::zeros({g.n_targets(), g.n_sources()}, at::kBool);
  for (int t = 0; t < g.n_targets(); ++t) m[t].narrow(0, 0, g.targets()[static_cast<size_t>(t)].n_upstream).fill_(true);
  return m;
}

at::Tensor prune_dangling(const CircuitGraph& g, at::Tensor kept) {
  kept = kept.clone();
  // Reverse topological order: a node whose output feeds no kept edge cannot matter, so edges
  // into its inputs go. Targets are in forward order; sources too.
  for (int t = g.n_targets() - 1; t >= 0; --t) {
    int owner = g.target_owner(t);
    if (owner < 0) continue;
    std::vector<int> owners = {owner};
    const GraphTarget& tg = g.targets()[static_cast<size_t>(t)];
    if (tg.kind == TargetKind::kK || tg.kind == TargetKind::kV) {  // a KV head feeds its whole group
      const int G = static_cast<int>(g.config().n_heads / g.config().n_kv_heads);
      for (int j = 1; j < G; ++j) owners.push_back(owner + j);
    }
    bool used = false;
    for (int o : owners) used = used || kept.select(1, o).any().item<bool>();
    if (!used) kept[t].fill_(false);
  }
  return kept;
}

at::Tensor select_top_n(const CircuitGraph& g, const at::Tensor& scores, int64_t n) {
  at::Tensor a = scores.abs().nan_to_num(-1.0).view(-1);
  n = std::min<int64_t>(n, g.n_edges());
  at::Tensor kept = at::zeros({a.numel()}, at::kBool);
  if (n > 0) kept.index_fill_(0, std::get<1>(a.topk(n)), true);
  return prune_dangling(g, kept.view({g.n_targets(), g.n_sources()}));
}

at::Tensor select_threshold(const CircuitGraph& g, const at::Tensor& scores, double threshold) {
  at::Tensor kept = scores.abs().nan_to_num(-1.0) >= threshold;
  return prune_dangling(g, kept);
}

std::vector<std::string> circuit_nodes(const CircuitGraph& g, const at::Tensor& kept) {
  std::vector<bool> in(static_cast<size_t>(g.n_sources()) + 1, false);
  for (int t = 0; t < g.n_targets(); ++t) {
    if (!kept[t].any().item<bool>()) continue;
    int owner = g.target_owner(t);
    in[owner < 0 ? static_cast<size_t>(g.n_sources()) : static_cast<size_t>(owner)] = true;
  }
  for (int s = 0; s < g.n_sources(); ++s)
    if (kept.select(1, s).any().item<bool>()) in[static_cast<size_t>(s)] = true;
  std::vector<std::string> out;
  for (int s = 0; s < g.n_sources(); ++s)
    if (in[static_cast<size_t>(s)]) out.push_back(g.sources()[static_cast<size_t>(s)].name);
  if (in.back()) out.push_back("logits");
  return out;
}

Faithfulness evaluate_circuit(const Model& model, const CircuitGraph& g, const TaskPairs& task,
                              const TaskRuns& runs, const at::Tensor& kept) {
  Faithfulness f;
  at::Tensor removed = all_edges(g).logical_and(kept.logical_not());
  f.metric_circuit = patched_metric(model, g, task, runs, removed);
  f.metric_clean = runs.metric_clean;
  f.metric_corrupted = runs.metric_corrupted;
  f.faithfulness = f.metric_circuit / f.metric_clean;
  f.normalized = (f.metric_circuit - f.metric_corrupted) / (f.metric_clean - f.metric_corrupted);
  f.n_edges = kept.sum().item<int64_t>();
  f.n_nodes = static_cast<int64_t>(circuit_nodes(g, kept).size());
  f.n_edges_total = g.n_edges();
  return f;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  auto ranks = [](const std::vector<double>& x) {
    std::vector<size_t> idx(x.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t i, size_t j) { return x[i] < x[j]; });
    std::vector<double> r(x.size());
    for (size_t i = 0; i < idx.size();) {
      size_t j = i;
      while (j + 1 < idx.size() && x[idx[j + 1]] == x[idx[i]]) ++j;
      for (size_t k = i; k <= j; ++k) r[idx[k]] = 0.5 * static_cast<double>(i + j);
      i = j + 1;
    }
    return r;
  };
  std::vector<double> ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace ms
