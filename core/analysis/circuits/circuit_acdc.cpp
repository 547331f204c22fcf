// ACDC (Conmy et al. 2023): greedy pruning of the edge graph in reverse topological order, each
// removal tried with the edges removed so far patched from the corrupted run.
#include <ATen/ATen.h>

#include <limits>

#include "core/analysis/circuits/circuit_discovery.h"

namespace ms {

AcdcResult acdc(const Model& model, const CircuitGraph& g, const TaskPairs& task, const TaskRuns& runs,
                const AcdcOptions& opts, const CircuitProgress& progress, const std::atomic<bool>* cancel) {
  at::NoGradGuard no_grad;
  AcdcResult res;
  res.scores.method = "acdc";
  res.scores.metric_clean = runs.metric_clean;
  res.scores.metric_corrupted = runs.metric_corrupted;
  res.scores.scores = at::full({g.n_targets(), g.n_sources()}, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
  const at::Tensor ref = answer_log_probs(task, runs.clean_logits);
  at::Tensor removed = at::zeros({g.n_targets(), g.n_sources()}, at::kFloat);
  auto loss = [&]() {
    EdgeRunOptions o;
    o.offsets = patch_edges_offsets(g, removed, runs.corrupted_out);
    at::Tensor logits = run_edge_forward(model, g, task.clean, o);
    return opts.kl ? kl_to_reference(task, ref, logits).item<double>() : -task_metric(task, logits).item<double>();
  };
  double current = loss();
  const int64_t total = g.n_edges();
  int64_t done = 0;
  const at::Tensor valid = all_edges(g);
  const int G = static_cast<int>(g.config().n_heads / g.config().n_kv_heads);
  for (int t = g.n_targets() - 1; t >= 0; --t) {
    if (cancel && *cancel) break;
    const GraphTarget& tg = g.targets()[static_cast<size_t>(t)];
    // A node none of whose outgoing edges is left no longer reaches the logits: its inputs do not
    // matter, so their edges go without a test.
    int owner = g.target_owner(t);
    if (owner >= 0) {
      bool used = false;
      const int n_owners = tg.kind == TargetKind::kK || tg.kind == TargetKind::kV ? G : 1;
      for (int j = 0; j < n_owners; ++j) {
        at::Tensor out_edges = valid.select(1, owner + j).logical_and(removed.select(1, owner + j) == 0);
        used = used || out_edges.any().item<bool>();
      }
      if (!used) {
        removed[t].narrow(0, 0, tg.n_upstream).fill_(1);
        done += tg.n_upstream;
        if (progress) progress(done, total);
        continue;
      }
    }
    for (int s = tg.n_upstream - 1; s >= 0; --s) {
      if (cancel && *cancel) break;
      removed[t][s] = 1;
      double trial = loss();
      ++res.n_tested;
      res.scores.scores[t][s] = trial - current;
      if (trial - current < opts.tau) current = trial;
      else removed[t][s] = 0;
      if (progress) progress(++done, total);
    }
  }
  res.kept = valid.logical_and(removed == 0);
  res.final_loss = current;
  return res;
}

}  // namespace ms
