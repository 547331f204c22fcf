// dsae_circuit_spec and run_dsae_circuit: discrete-SAE circuit identification declared once and
// run the same way by the CLI, batch jobs and the workbench.
#include "runs/dsae_circuit_run.h"

#include <ATen/ATen.h>

#include "core/analysis/circuits/circuit_graph.h"
#include "runs/task_run.h"
#include "storage/circuit_records.h"

namespace ms {

const AnalysisSpec& dsae_circuit_spec() {
  static const AnalysisSpec spec = [] {
    AnalysisSpec s;
    s.kind = "sae-circuit";
    s.command = "sae circuit";
    s.summary = "discrete-SAE circuit identification: heads whose SAE codes occur only on prompts the model gets right";
    s.params = task_param_decls();
    ParamDecl ex{"examples", ParamType::kInt, 5, true, "positive (clean, right) and negative (corrupted, wrong) prompts, each"};
    ex.lo = 2, ex.hi = 4096;
    ParamDecl dsae{"d_sae", ParamType::kInt, 200, true, "codebook size (SAE features)"};
    dsae.lo = 2, dsae.hi = 1 << 16;
    ParamDecl epochs{"epochs", ParamType::kInt, 500, true, "full-batch Adam steps"};
    epochs.lo = 1, epochs.hi = 1 << 20;
    ParamDecl l1{"l1", ParamType::kFloat, 0.02, true, "L1 weight of the SAE activations"};
    l1.lo = 0;
    ParamDecl lr{"lr", ParamType::kFloat, 1e-3, true, "Adam learning rate"};
    lr.lo = 0, lr.lo_open = true;
    ParamDecl sae_seed{"sae_seed", ParamType::kInt, 0, true, "seed of the SAE's initialisation"};
    sae_seed.lo = 0;
    ParamDecl position{"position", ParamType::kChoice, "answer", true, "head output: at the answer position, or its mean over positions up to it (the paper's)"};
    position.choices = {"mean", "answer"};
    ParamDecl codebook{"codebook", ParamType::kChoice, "shared", true,
                       "one SAE for every head's outputs (the paper's code) or one per head"};
    codebook.choices = {"shared", "per-head"};
    ParamDecl top_n{"top_n", ParamType::kInt, 0, true, "keep the N best-ranked heads (0: use min_unique)"};
    top_n.lo = 0;
    ParamDecl min_unique{"min_unique", ParamType::kInt, 2, true, "keep every head with at least this many codes unique to positives"};
    min_unique.lo = 1;
    ParamDecl name{"circuit_name", ParamType::kString, "", false, "the circuit's name (\"\": the task's)"};
    name.flag = "--name";
    for (const ParamDecl& d : {ex, dsae, epochs, l1, lr, sae_seed, position, codebook, top_n, min_unique, name}) s.params.push_back(d);
    s.check = [](const nlohmann::json& p, const ModelConfig* c, std::string* param) -> std::string {
      if (!c) return "";
      return check_task_params(p, *c, param);
    };
    return s;
  }();
  return spec;
}

Circuit dsae_circuit_record(const ModelConfig& c, const DsaeResult& r, const std::vector<int64_t>& heads,
                            const std::string& name, const nlohmann::json& meta) {
  CircuitGraph g(c);
  at::Tensor kept = at::zeros({g.n_targets(), g.n_sources()}, at::kBool);
  at::Tensor scores = at::full({g.n_targets(), g.n_sources()}, NAN, at::kDouble);
  const int logits = g.n_targets() - 1;
  for (int64_t i = 0; i < c.n_layers * c.n_heads; ++i) {
    const int src = g.head_source(static_cast<int>(i / c.n_heads), static_cast<int>(i % c.n_heads));
    scores[logits][src] = static_cast<double>(r.overlap.unique[static_cast<size_t>(i)]);
  }
  for (int64_t i : heads)
    kept[logits][g.head_source(static_cast<int>(i / c.n_heads), static_cast<int>(i % c.n_heads))] = true;
  return circuit_record(g, kept, scores, name, meta.dump());
}

DsaeCircuitOutcome run_dsae_circuit(RunSession& session, const Model& m, nlohmann::json params) {
  std::string param;
  std::string e = complete_params(dsae_circuit_spec(), kEverywhere, params, &m.config(), &param);
  if (!e.empty()) fail_usage(e);
  TaskPairs task = make_param_task(m, params);
  DsaeOptions o;
  o.n_examples = params["examples"].get<int64_t>();
  o.d_sae = params["d_sae"].get<int64_t>();
  o.epochs = params["epochs"].get<int64_t>();
  o.l1 = params["l1"].get<double>();
  o.lr = params["lr"].get<double>();
  o.seed = static_cast<uint64_t>(params["sae_seed"].get<int64_t>());
  o.mean_positions = params["position"].get<std::string>() == "mean";
  o.per_head = params["codebook"].get<std::string>() == "per-head";
  DsaeCircuitOutcome out;
  out.params = params;
  out.counts = task_counts(task);
  nlohmann::json stored = stored_params(dsae_circuit_spec(), params);
  stored.update(out.counts);
  session.begin(m, "sae-circuit", stored);
  out.run_id = session.run_id();
  const ModelConfig& c = m.config();
  out.cancelled = !session.conclude([&](std::string&) -> std::optional<RunResults> {
    out.result = dsae_scores(m, task, o);
    const DsaeResult& r = out.result;
    out.heads = dsae_select(r, params["top_n"].get<int64_t>(), params["min_unique"].get<int64_t>());
    RunResults res;
    add_task_results(m, task, res);
    nlohmann::json meta = {{"method", "sae-circuit"}, {"task", params["task"]}, {"positives", r.positives},
                           {"negatives", r.negatives}, {"scale", r.scale}, {"recon_fve", r.recon_fve}};
    std::string name = params["circuit_name"].get<std::string>();
    out.circuit = dsae_circuit_record(c, r, out.heads, name.empty() ? params["task"].get<std::string>() : name, meta);
    res.circuits.push_back(out.circuit);
    at::Tensor uniq = at::tensor(r.overlap.unique, at::kLong).to(at::kDouble).view({c.n_layers, c.n_heads});
    at::Tensor frac = at::tensor(r.overlap.fraction, at::kDouble).view({c.n_layers, c.n_heads});
    res.scores.push_back(head_scores_from_tensor("dsae_unique", uniq));
    res.scores.push_back(head_scores_from_tensor("dsae_fraction", frac));
    nlohmann::json cm = {{"kind", "dsae_codes"}, {"axes", {"prompt", "head"}}, {"positives", r.positives},
                         {"negatives", r.negatives}, {"note", "positives (clean) first, then negatives (corrupted); code d_sae = no feature active"}};
    res.tensors.push_back({"dsae_codes", r.codes.to(at::kFloat), cm.dump()});
    return res;
  });
  out.run_id = session.run_id();
  return out;
}

}  // namespace ms
