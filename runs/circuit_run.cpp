// circuit_spec and run_circuit: circuit discovery declared once and run the same way everywhere.
#include "runs/circuit_run.h"

#include <algorithm>
#include <cmath>

namespace ms {

const AnalysisSpec& circuit_spec() {
  static const AnalysisSpec spec = [] {
    AnalysisSpec s;
    s.kind = "circuit";
    s.summary = "circuit discovery on a circuit task: EAP, EAP-IG, ACDC or path patching (as mechscope circuit)";
    s.params = task_param_decls();
    ParamDecl method{"method", ParamType::kChoice, "eap", true, "eap, eap-ig, acdc or path"};
    method.choices = {"eap", "eap-ig", "acdc", "path"};
    ParamDecl top_n{"top_n", ParamType::kInt, 0, true, "keep the N edges with the largest |score| (0: 20; path: N heads, 0: 10)"};
    top_n.lo = 0;
    ParamDecl threshold{"threshold", ParamType::kFloat, 0.0, true, "eap, eap-ig: keep every edge with |score| >= X (0: use top_n)"};
    threshold.lo = 0;
    ParamDecl tau{"tau", ParamType::kFloat, 0.01, true, "acdc: remove an edge when the loss rises by less than this"};
    tau.lo = 0;
    ParamDecl loss{"loss", ParamType::kChoice, "kl", true, "acdc: kl (KL to the clean model) or logit-diff"};
    loss.choices = {"kl", "logit-diff"};
    ParamDecl ig{"ig_steps", ParamType::kInt, 5, true, "eap-ig: interpolation steps of the input embeddings"};
    ig.lo = 1, ig.hi = 1 << 20;
    ParamDecl receivers{"receivers", ParamType::kString, "logits", true, "path: logits, mL, L.H or L.H:q|k|v, comma separated"};
    ParamDecl evaluate{"evaluate", ParamType::kBool, false, false, "faithfulness: the metric with every edge outside the circuit patched"};
    ParamDecl name{"circuit_name", ParamType::kString, "", false, "the circuit's name (\"\": the task's)"};
    name.flag = "--name";
    for (const ParamDecl& d : {method, top_n, threshold, tau, loss, ig, receivers, evaluate, name}) s.params.push_back(d);
    s.check = [](const nlohmann::json& p, const ModelConfig* c, std::string* param) -> std::string {
      if (!c) return "";
      std::string msg = check_task_params(p, *c, param);
      if (!msg.empty()) return msg;
      const CircuitOptions o = circuit_options(p);
      msg = check_circuit_options(o, false, param);
      if (!msg.empty()) return msg;
      if (o.method == "path") {
        std::vector<int> receivers;
        msg = parse_receivers(CircuitGraph(*c), o.receivers, &receivers);
        if (!msg.empty()) return *param = "receivers", msg;
      }
      return "";
    };
    return s;
  }();
  return spec;
}

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

CircuitRunOutcome run_circuit(RunSession& session, const Model& m, nlohmann::json params) {
  std::string param;
  std::string e = complete_params(circuit_spec(), kEverywhere, params, &m.config(), &param);
  if (!e.empty()) fail_usage(e);
  TaskPairs task = make_param_task(m, params);
  const CircuitOptions co = circuit_options(params);
  CircuitGraph g(m.config());
  CircuitRunOutcome out;
  out.params = params;
  out.counts = task_counts(task);
  out.n_edges_total = g.n_edges();
  nlohmann::json stored = stored_params(circuit_spec(), params);
  stored.update(out.counts);
  session.begin(m, "circuit", stored);
  out.run_id = session.run_id();
  out.cancelled = !session.conclude([&](std::string&) -> std::optional<RunResults> {
    out.run = circuit_run(m, g, task, co, params["task"].get<std::string>(), session.progress_fn(), session.cancel_flag());
    if (out.run.cancelled) return std::nullopt;
    return out.run.results;
  });
  out.run_id = session.run_id();
  return out;
}

}  // namespace ms
