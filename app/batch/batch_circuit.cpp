// Batch adapter for circuit discovery (`mechscope circuit`): one item = one model, one task and
// one method cell (eap | eap-ig | acdc | path with its top_n / threshold / tau); run and stored by
// run_circuit (runs/circuit_run.h) as the command and the workbench store it.
#include <algorithm>
#include <cmath>

#include "app/batch/batch_analyses.h"
#include "app/batch/batch_task.h"
#include "runs/circuit_run.h"

namespace ms::app::batch {
namespace {

ItemOutput run_circuit_item(ItemContext& ctx) {
  CircuitRunOutcome r = run_circuit(*ctx.session, ctx.model, ctx.item.params);
  ItemOutput out;
  if (r.cancelled) return out;
  const CircuitRun& cr = r.run;
  out.summary = {{"edges", cr.circuit.edges.size()}, {"nodes", cr.circuit.nodes.size()},
                 {"metric_clean", cr.runs.metric_clean}, {"metric_corrupted", cr.runs.metric_corrupted}};
  if (r.params["evaluate"].get<bool>()) out.summary["faithfulness"] = cr.faithfulness.faithfulness;
  return out;
}

}  // namespace

Analysis circuit_analysis() {
  Analysis a = analysis_from_spec(circuit_spec());
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    const ModelConfig& c = *s.config;
    const TaskSize t = task_size_bound(p, c);
    const int64_t mlps = c.attn_only() ? 0 : c.n_layers;
    const int64_t n_sources = 1 + c.n_layers * c.n_heads + mlps;
    const int64_t n_targets = c.n_layers * (c.n_heads + 2 * c.n_kv_heads) + mlps + 1;
    const double fwd = task_forward_flops(t, s);
    const std::string method = p["method"].get<std::string>();
    double passes = 3 + (p["evaluate"].get<bool>() ? 1 : 0);  // clean, corrupted, DLA (+ the evaluation)
    if (method == "eap") passes += 3;                        // forward and backward
    else if (method == "eap-ig") passes += 1 + 3.0 * static_cast<double>(p["ig_steps"].get<int64_t>());
    else if (method == "acdc") passes += static_cast<double>(CircuitGraph(c).n_edges());  // at most one per edge
    else passes += static_cast<double>(c.n_layers * c.n_heads);
    Estimate e;
    // Every node's output on both runs, the offsets / gradients of every target, and a few
    // forward passes' activations kept for the backward pass.
    e.activation_bytes = 4.0 * static_cast<double>(2 * n_sources + n_targets) * static_cast<double>(t.pairs) *
                             static_cast<double>(t.tokens) * static_cast<double>(c.d_model) + 3 * task_forward_bytes(t, c);
    e.flops = passes * fwd;
    return e;
  };
  a.run = run_circuit_item;
  return a;
}

}  // namespace ms::app::batch
