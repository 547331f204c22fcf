// `mechscope circuit`: circuit discovery on a task (EAP, EAP-IG, ACDC, path patching), circuit
// selection (top-n edges or a threshold), faithfulness with --evaluate, stored as a run with the
// circuit, the edge scores and per-head scores (DLA, path patching, edge score out of each head).
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/circuit_common.h"
#include "app/commands/circuit_runs.h"
#include "app/commands/progress.h"
#include "core/analysis/circuits/circuit_discovery.h"
#include "core/analysis/circuits/patching.h"
#include "storage/circuit_records.h"

namespace ms::app {
namespace {

struct Opts : ModelOptions {
  TaskCliOptions task;
  CircuitOptions c;
  std::string db;
};

}  // namespace

void register_circuit(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("circuit", "Find a circuit on a task: EAP, EAP-IG, ACDC or path patching");
  add_model_options(*cmd, *o);
  add_task_options(*cmd, o->task);
  cmd->add_option("--method", o->c.method, "eap, eap-ig, acdc or path")->capture_default_str();
  cmd->add_option("--top-n", o->c.top_n, "keep the N edges with the largest |score| (default 20; path: N heads)");
  cmd->add_option("--threshold", o->c.threshold, "keep every edge with |score| >= X (eap, eap-ig)");
  cmd->add_option("--tau", o->c.tau, "acdc: remove an edge when the loss rises by less than this")->capture_default_str();
  cmd->add_option("--loss", o->c.loss, "acdc: kl (KL to the clean model) or logit-diff (minus the task metric)")->capture_default_str();
  cmd->add_option("--ig-steps", o->c.ig_steps, "eap-ig: interpolation steps of the input embeddings")->capture_default_str();
  cmd->add_option("--receivers", o->c.receivers, "path: logits, mL, L.H or L.H:q|k|v, comma separated")->capture_default_str();
  cmd->add_flag("--evaluate", o->c.evaluate, "faithfulness: the metric with every edge outside the circuit patched");
  cmd->add_option("--name", o->c.name, "circuit name (default: the task's)");
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  cmds.emplace_back(cmd, [o]() {
    const CircuitOptions& co = o->c;
    const std::string& method = co.method;
    std::string bad_option;
    std::string err = check_circuit_options(co, true, &bad_option);
    if (!err.empty()) fail_usage(err);
    std::unique_ptr<Model> m = load_model(*o);
    TaskPairs task = make_cli_task(*m, o->task, o->json);
    CircuitGraph g(m->config());
    std::vector<int> receivers;
    if (method == "path" && !(err = parse_receivers(g, co.receivers, &receivers)).empty()) fail_usage("--" + err);
    const int64_t top_n = co.top_n > 0 ? co.top_n : (method == "path" ? 10 : 20);

    std::unique_ptr<Database> db = open_database(o->db, false);
    nlohmann::json params = {{"task", o->task.task}, {"method", method}, {"n", task.n()}, {"seed", o->task.seed},
                             {"survived", task.n_kept}, {"generated", task.n_candidates}};
    if (method == "acdc") params["tau"] = co.tau, params["loss"] = co.loss;
    else if (std::isnan(co.threshold)) params["top_n"] = top_n;
    else params["threshold"] = co.threshold;
    if (method == "eap-ig") params["ig_steps"] = co.ig_steps;
    if (method == "path") params["receivers"] = co.receivers;
    if (!o->task.task_file.empty()) params["task_file"] = o->task.task_file;
    const int64_t run = begin_cli_run(*db, *m, "circuit", params.dump());
    Interruptible intr;
    ProgressBar bar("circuit " + method, 1000, o->json);
    auto progress = [&](int64_t done, int64_t total) {
      bar.update(done * 1000 / std::max<int64_t>(1, total));
      (void)db->set_progress(run, static_cast<double>(done) / static_cast<double>(std::max<int64_t>(1, total)));
    };
    CircuitRun cr = circuit_run(*m, g, task, co, o->task.task, progress, intr.flag());
    bar.finish();
    if (cr.cancelled || intr.cancelled()) {
      (void)db->cancel_run(run, "interrupted");
      throw InputError("interrupted; run " + std::to_string(run) + " marked cancelled", ErrorCode::kInternal);
    }
    throw_if_failed(db->finish_run(run, cr.results));
    const TaskRuns& runs = cr.runs;
    const at::Tensor &scores = cr.scores, &kept = cr.kept;
    const Circuit& circuit = cr.circuit;
    const Faithfulness& f = cr.faithfulness;
    const DlaResult& dla = cr.dla;
    const std::string& name = circuit.name;

    // Kept edges, largest |score| first.
    struct Row {
      std::string source, target;
      double score;
    };
    std::vector<Row> rows;
    for (int t = 0; t < g.n_targets(); ++t)
      for (int src = 0; src < g.targets()[static_cast<size_t>(t)].n_upstream; ++src)
        if (kept[t][src].item<bool>())
          rows.push_back({g.sources()[static_cast<size_t>(src)].name, g.targets()[static_cast<size_t>(t)].name,
                          scores[t][src].item<double>()});
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      return std::fabs(a.score) > std::fabs(b.score);
    });
    if (o->json) {
      nlohmann::json j = {{"run", run}, {"method", method}, {"task", o->task.task}, {"n_pairs", task.n()},
                          {"metric_clean", runs.metric_clean}, {"metric_corrupted", runs.metric_corrupted},
                          {"n_edges_total", g.n_edges()}, {"n_edges", rows.size()}};
      for (const auto& n : circuit.nodes) j["nodes"].push_back(n.name);
      j["edges"] = nlohmann::json::array();
      for (const Row& r : rows) j["edges"].push_back({{"source", r.source}, {"target", r.target}, {"score", r.score}});
      if (co.evaluate)
        j["evaluation"] = {{"faithfulness", f.faithfulness}, {"normalized", f.normalized},
                           {"metric_circuit", f.metric_circuit}, {"n_edges", f.n_edges}, {"n_nodes", f.n_nodes}};
      std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return 0;
    }
    std::printf("run %lld: %s on %s (%lld pairs); metric clean %.4f, corrupted %.4f\n", static_cast<long long>(run),
                method.c_str(), o->task.task.c_str(), static_cast<long long>(task.n()), runs.metric_clean,
                runs.metric_corrupted);
    std::printf("circuit '%s': %zu of %lld edges, %zu nodes\n", name.c_str(), rows.size(),
                static_cast<long long>(g.n_edges()), circuit.nodes.size());
    for (size_t k = 0; k < rows.size() && k < 25; ++k)
      std::printf("  %-8s -> %-12s %+.5f\n", rows[k].source.c_str(), rows[k].target.c_str(), rows[k].score);
    if (rows.size() > 25) std::printf("  ... %zu more\n", rows.size() - 25);
    if (co.evaluate)
      std::printf("faithfulness %.4f (metric %.4f with every other edge patched; normalised %.4f) with %lld edges, "
                  "%lld nodes\n",
                  f.faithfulness, f.metric_circuit, f.normalized, static_cast<long long>(f.n_edges),
                  static_cast<long long>(f.n_nodes));
    {
      at::Tensor flat = dla.per_head.reshape(-1);
      at::Tensor order_dla = std::get<1>(flat.abs().sort(0, true));
      std::printf("direct logit attribution (clean, answer - distractor %.4f, bias terms %.4f); top heads:",
                  dla.logit_diff, dla.bias_terms);
      for (int64_t k = 0; k < std::min<int64_t>(5, flat.numel()); ++k) {
        int64_t i = order_dla[k].item<int64_t>();
        std::printf(" %lld.%lld %+.3f", static_cast<long long>(i / m->config().n_heads),
                    static_cast<long long>(i % m->config().n_heads), flat[i].item<double>());
      }
      std::printf("\n");
    }
    return 0;
  });
}

}  // namespace ms::app
