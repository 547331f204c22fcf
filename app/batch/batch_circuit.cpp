// Batch adapter for circuit discovery (`mechscope circuit`): one item = one model, one task and
// one method cell (eap | eap-ig | acdc | path with its top_n / threshold / tau); runs circuit_run
// (app/commands/circuit_runs.h) as the command does and stores the same circuit, edge and head scores.
#include <algorithm>
#include <cmath>

#include "app/batch/batch_analyses.h"
#include "app/batch/batch_task.h"
#include "app/commands/circuit_runs.h"

namespace ms::app::batch {
namespace {

CircuitOptions circuit_options(const nlohmann::json& p) {
  CircuitOptions o;
  o.method = p["method"].get<std::string>();
  o.top_n = p["top_n"].get<int64_t>();
  const double th = p["threshold"].get<double>();
  o.threshold = th > 0 ? th : NAN;  // 0: select by top_n
  o.tau = p["tau"].get<double>();
  o.loss = p["loss"].get<std::string>();
  o.ig_steps = static_cast<int>(std::min<int64_t>(p["ig_steps"].get<int64_t>(), 1 << 20));
  o.receivers = p["receivers"].get<std::string>();
  o.evaluate = p["evaluate"].get<bool>();
  o.name = p["circuit_name"].get<std::string>();
  return o;
}

ItemOutput run_circuit(ItemContext& ctx) {
  const nlohmann::json& p = ctx.item.params;
  TaskPairs task = make_item_task(ctx.model, p);
  CircuitGraph g(ctx.model.config());
  const CircuitOptions co = circuit_options(p);
  CircuitRun cr = circuit_run(ctx.model, g, task, co, p["task"].get<std::string>(), ctx.progress, ctx.cancel);
  if (cr.cancelled) return ItemOutput{};
  ItemOutput out = task_item_output(task, std::move(cr.results));
  if (co.method == "acdc") out.params["acdc_tested"] = cr.acdc_tested;
  out.summary = {{"edges", cr.circuit.edges.size()}, {"nodes", cr.circuit.nodes.size()},
                 {"metric_clean", cr.runs.metric_clean}, {"metric_corrupted", cr.runs.metric_corrupted}};
  if (co.evaluate) out.summary["faithfulness"] = cr.faithfulness.faithfulness;
  return out;
}

}  // namespace

Analysis circuit_analysis() {
  Analysis a = task_analysis(
      "circuit", "circuit discovery on a circuit task: EAP, EAP-IG, ACDC or path patching (as mechscope circuit)", {
      {"method", ParamType::kString, "eap", true, "eap, eap-ig, acdc or path"},
      {"top_n", ParamType::kInt, 0, true, "keep the N edges with the largest |score| (0: 20; path: N heads, 0: 10)"},
      {"threshold", ParamType::kFloat, 0.0, true, "eap, eap-ig: keep every edge with |score| >= X (0: use top_n)"},
      {"tau", ParamType::kFloat, 0.01, true, "acdc: remove an edge when the loss rises by less than this"},
      {"loss", ParamType::kString, "kl", true, "acdc: kl or logit-diff"},
      {"ig_steps", ParamType::kInt, 5, true, "eap-ig: interpolation steps"},
      {"receivers", ParamType::kString, "logits", true, "path: logits, mL, L.H or L.H:q|k|v, comma separated"},
      {"evaluate", ParamType::kBool, false, false, "faithfulness of the circuit"},
      {"circuit_name", ParamType::kString, "", false, "the circuit's name (\"\": the task's)"},
  });
  a.check = [](const nlohmann::json& p, const ModelConfig& c, std::string* param) -> std::string {
    std::string msg = check_task_params(p, c, param);
    if (!msg.empty()) return msg;
    if (p["threshold"].get<double>() < 0) return *param = "threshold", "threshold must not be negative";
    if (p["tau"].get<double>() < 0) return *param = "tau", "tau must not be negative";
    const CircuitOptions o = circuit_options(p);
    msg = check_circuit_options(o, false, param);
    if (!msg.empty()) return msg;
    if (o.method == "path") {
      std::vector<int> receivers;
      msg = parse_receivers(CircuitGraph(c), o.receivers, &receivers);
      if (!msg.empty()) return *param = "receivers", msg;
    }
    return "";
  };
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
  a.run = run_circuit;
  return a;
}

}  // namespace ms::app::batch
