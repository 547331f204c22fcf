// `mechscope circuit`: circuit discovery on a task (EAP, EAP-IG, ACDC, path patching), circuit
// selection (top-n edges or a threshold), faithfulness with --evaluate, stored as a run with the
// circuit, the edge scores and per-head scores by run_circuit (runs/circuit_run.h), whose spec
// makes the options.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "app/commands/cli_run.h"
#include "app/commands/progress.h"
#include "app/commands/spec_cli.h"
#include "runs/circuit_run.h"

namespace ms::app {
namespace {

struct Opts : AnalysisOptions {};

// A kept edge.
struct Row {
  std::string source, target;
  double score;
};

// Kept edges, largest |score| first.
std::vector<Row> kept_rows(const CircuitGraph& g, const CircuitRun& cr) {
  std::vector<Row> rows;
  for (int t = 0; t < g.n_targets(); ++t)
    for (int src = 0; src < g.targets()[static_cast<size_t>(t)].n_upstream; ++src)
      if (cr.kept[t][src].item<bool>())
        rows.push_back({g.sources()[static_cast<size_t>(src)].name, g.targets()[static_cast<size_t>(t)].name,
                        cr.scores[t][src].item<double>()});
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return std::fabs(a.score) > std::fabs(b.score); });
  return rows;
}

void print_json(const CircuitRunOutcome& r, const std::vector<Row>& rows) {
  const CircuitRun& cr = r.run;
  const Faithfulness& f = cr.faithfulness;
  nlohmann::json j = {{"run", r.run_id}, {"method", r.params["method"]}, {"task", r.params["task"]},
                      {"n_pairs", r.counts["n_pairs"]}, {"metric_clean", cr.runs.metric_clean},
                      {"metric_corrupted", cr.runs.metric_corrupted}, {"n_edges_total", r.n_edges_total},
                      {"n_edges", rows.size()}};
  for (const auto& n : cr.circuit.nodes) j["nodes"].push_back(n.name);
  j["edges"] = nlohmann::json::array();
  for (const Row& row : rows) j["edges"].push_back({{"source", row.source}, {"target", row.target}, {"score", row.score}});
  if (r.params["evaluate"].get<bool>())
    j["evaluation"] = {{"faithfulness", f.faithfulness}, {"normalized", f.normalized},
                       {"metric_circuit", f.metric_circuit}, {"n_edges", f.n_edges}, {"n_nodes", f.n_nodes}};
  j["dla"] = {{"logit_diff", cr.dla.logit_diff}, {"bias_terms", cr.dla.bias_terms}, {"notes", cr.dla.notes}};
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

void print_text(const CircuitRunOutcome& r, const std::vector<Row>& rows, int64_t n_heads) {
  const CircuitRun& cr = r.run;
  const Faithfulness& f = cr.faithfulness;
  std::printf("run %lld: %s on %s (%lld pairs); metric clean %.4f, corrupted %.4f\n", static_cast<long long>(r.run_id),
              r.params["method"].get<std::string>().c_str(), r.params["task"].get<std::string>().c_str(),
              static_cast<long long>(r.counts["n_pairs"].get<int64_t>()), cr.runs.metric_clean, cr.runs.metric_corrupted);
  std::printf("circuit '%s': %zu of %lld edges, %zu nodes\n", cr.circuit.name.c_str(), rows.size(),
              static_cast<long long>(r.n_edges_total), cr.circuit.nodes.size());
  for (size_t k = 0; k < rows.size() && k < 25; ++k)
    std::printf("  %-8s -> %-12s %+.5f\n", rows[k].source.c_str(), rows[k].target.c_str(), rows[k].score);
  if (rows.size() > 25) std::printf("  ... %zu more\n", rows.size() - 25);
  if (r.params["evaluate"].get<bool>())
    std::printf("faithfulness %.4f (metric %.4f with every other edge patched; normalised %.4f) with %lld edges, "
                "%lld nodes\n",
                f.faithfulness, f.metric_circuit, f.normalized, static_cast<long long>(f.n_edges),
                static_cast<long long>(f.n_nodes));
  at::Tensor flat = cr.dla.per_head.reshape(-1);
  at::Tensor order_dla = std::get<1>(flat.abs().sort(0, true));
  std::printf("direct logit attribution (clean, answer - distractor %.4f, bias terms %.4f); top heads:",
              cr.dla.logit_diff, cr.dla.bias_terms);
  for (int64_t k = 0; k < std::min<int64_t>(5, flat.numel()); ++k) {
    int64_t i = order_dla[k].item<int64_t>();
    std::printf(" %lld.%lld %+.3f", static_cast<long long>(i / n_heads), static_cast<long long>(i % n_heads),
                flat[i].item<double>());
  }
  std::printf("\n");
  for (const std::string& note : cr.dla.notes) std::printf("  note: %s\n", note.c_str());
}

int run(const Opts& o) {
  nlohmann::json params = o.spec->params();
  CliRun cli(o, "circuit");
  const Model* m = cli.model.get();
  CircuitRunOutcome r = run_circuit(cli.session, *m, params);
  cli.bar.finish();
  if (r.cancelled) throw InputError("interrupted; run " + std::to_string(r.run_id) + " marked cancelled", ErrorCode::kInternal);
  const int64_t survived = r.counts["survived"].get<int64_t>(), generated = r.counts["generated"].get<int64_t>();
  if (!o.json && survived != generated)
    std::cerr << r.params["task"].get<std::string>() << ": " << survived << " of " << generated
              << " generated prompts survived the single-token filter\n";
  std::vector<Row> rows = kept_rows(CircuitGraph(m->config()), r.run);
  if (o.json) print_json(r, rows);
  else print_text(r, rows, m->config().n_heads);
  return 0;
}

}  // namespace

void register_circuit(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = add_analysis_command(app, circuit_spec(), "Find a circuit on a task: EAP, EAP-IG, ACDC or path patching", *o);
  cmds.emplace_back(cmd, [o]() { return run(*o); });
}

}  // namespace ms::app
