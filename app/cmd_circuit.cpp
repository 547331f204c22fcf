// `mechscope circuit`: circuit discovery on a task (EAP, EAP-IG, ACDC, path patching), circuit
// selection (top-n edges or a threshold), faithfulness with --evaluate, stored as a run with the
// circuit, the edge scores and per-head scores (DLA, path patching, edge score out of each head).
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/circuit_common.h"
#include "app/progress.h"
#include "core/circuit_discovery.h"
#include "core/patching.h"
#include "storage/circuit_records.h"

namespace ms::app {
namespace {

struct Opts : ModelOptions {
  TaskCliOptions task;
  std::string method = "eap", loss = "kl", receivers = "logits", db, name;
  int64_t top_n = 0;
  double threshold = NAN, tau = 0.01;
  int ig_steps = 5;
  bool evaluate = false;
};

// "logits", "m3", "1.2" (q, k and v), "1.2:k".
std::vector<int> parse_receivers(const CircuitGraph& g, const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  const ModelConfig& c = g.config();
  while (std::getline(ss, item, ',')) {
    if (item == "logits") {
      out.push_back(g.n_targets() - 1);
      continue;
    }
    try {
      if (item.size() > 1 && item[0] == 'm') {
        int l = std::stoi(item.substr(1));
        if (c.attn_only() || l < 0 || l >= c.n_layers) throw std::out_of_range(item);
        out.push_back(g.group_of(TargetKind::kMlp, l).first);
        continue;
      }
      size_t dot = item.find('.'), colon = item.find(':');
      if (dot == std::string::npos) throw std::invalid_argument(item);
      int l = std::stoi(item.substr(0, dot));
      int h = std::stoi(item.substr(dot + 1, colon == std::string::npos ? std::string::npos : colon - dot - 1));
      if (l < 0 || l >= c.n_layers || h < 0 || h >= c.n_heads) throw std::out_of_range(item);
      std::string kinds = colon == std::string::npos ? "qkv" : item.substr(colon + 1);
      const int G = static_cast<int>(c.n_heads / c.n_kv_heads);
      for (char k : kinds) {
        if (k == 'q') out.push_back(g.group_of(TargetKind::kQ, l).first + h);
        else if (k == 'k') out.push_back(g.group_of(TargetKind::kK, l).first + h / G);
        else if (k == 'v') out.push_back(g.group_of(TargetKind::kV, l).first + h / G);
        else throw std::invalid_argument(item);
      }
    } catch (const std::logic_error&) {
      fail_usage("--receivers: '" + item + "' is not logits, mLAYER, LAYER.HEAD or LAYER.HEAD:q|k|v within the model");
    }
  }
  if (out.empty()) fail_usage("--receivers is empty");
  return out;
}

}  // namespace

void register_circuit(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("circuit", "Find a circuit on a task: EAP, EAP-IG, ACDC or path patching");
  add_model_options(*cmd, *o);
  add_task_options(*cmd, o->task);
  cmd->add_option("--method", o->method, "eap, eap-ig, acdc or path")->capture_default_str();
  cmd->add_option("--top-n", o->top_n, "keep the N edges with the largest |score| (default 20; path: N heads)");
  cmd->add_option("--threshold", o->threshold, "keep every edge with |score| >= X (eap, eap-ig)");
  cmd->add_option("--tau", o->tau, "acdc: remove an edge when the loss rises by less than this")->capture_default_str();
  cmd->add_option("--loss", o->loss, "acdc: kl (KL to the clean model) or logit-diff (minus the task metric)")->capture_default_str();
  cmd->add_option("--ig-steps", o->ig_steps, "eap-ig: interpolation steps of the input embeddings")->capture_default_str();
  cmd->add_option("--receivers", o->receivers, "path: logits, mL, L.H or L.H:q|k|v, comma separated")->capture_default_str();
  cmd->add_flag("--evaluate", o->evaluate, "faithfulness: the metric with every edge outside the circuit patched");
  cmd->add_option("--name", o->name, "circuit name (default: the task's)");
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  cmds.emplace_back(cmd, [o]() {
    const std::string& method = o->method;
    if (method != "eap" && method != "eap-ig" && method != "acdc" && method != "path")
      fail_usage("--method '" + method + "': expected eap, eap-ig, acdc or path");
    if (o->top_n < 0) fail_usage("--top-n must not be negative");
    if (o->top_n > 0 && !std::isnan(o->threshold)) fail_usage("give --top-n or --threshold, not both");
    if (method == "acdc" && (o->top_n > 0 || !std::isnan(o->threshold)))
      fail_usage("acdc selects its own circuit with --tau; --top-n and --threshold are for eap, eap-ig and path");
    if (o->loss != "kl" && o->loss != "logit-diff") fail_usage("--loss must be kl or logit-diff");
    if (o->ig_steps < 1) fail_usage("--ig-steps must be at least 1");
    std::unique_ptr<Model> m = load_model(*o);
    TaskPairs task = make_cli_task(*m, o->task, o->json);
    CircuitGraph g(m->config());
    std::vector<int> receivers;
    if (method == "path") receivers = parse_receivers(g, o->receivers);
    const int64_t top_n = o->top_n > 0 ? o->top_n : (method == "path" ? 10 : 20);

    std::unique_ptr<Database> db = open_database(o->db, false);
    nlohmann::json params = {{"task", o->task.task}, {"method", method}, {"n", task.n()}, {"seed", o->task.seed},
                             {"survived", task.n_kept}, {"generated", task.n_candidates}};
    if (method == "acdc") params["tau"] = o->tau, params["loss"] = o->loss;
    else if (std::isnan(o->threshold)) params["top_n"] = top_n;
    else params["threshold"] = o->threshold;
    if (method == "eap-ig") params["ig_steps"] = o->ig_steps;
    if (method == "path") params["receivers"] = o->receivers;
    if (!o->task.task_file.empty()) params["task_file"] = o->task.task_file;
    const int64_t run = begin_cli_run(*db, *m, "circuit", params.dump());
    Interruptible intr;
    ProgressBar bar("circuit " + method, 1000, o->json);
    auto progress = [&](int64_t done, int64_t total) {
      bar.update(done * 1000 / std::max<int64_t>(1, total));
      (void)db->set_progress(run, static_cast<double>(done) / static_cast<double>(std::max<int64_t>(1, total)));
    };

    TaskRuns runs = run_task(*m, g, task);
    RunResults res;
    add_task_results(*m, task, res);
    at::Tensor scores, kept;
    at::Tensor path_grid;
    if (method == "eap" || method == "eap-ig") {
      scores = edge_attribution(*m, g, task, runs, method == "eap-ig" ? o->ig_steps : 0).scores;
      kept = std::isnan(o->threshold) ? select_top_n(g, scores, top_n) : select_threshold(g, scores, o->threshold);
    } else if (method == "acdc") {
      AcdcOptions ao;
      ao.tau = o->tau;
      ao.kl = o->loss == "kl";
      AcdcResult r = acdc(*m, g, task, runs, ao, progress, intr.flag());
      scores = r.scores.scores;
      kept = prune_dangling(g, r.kept);
      params["acdc_tested"] = r.n_tested;
    } else {
      path_grid = path_patching(*m, g, task, runs, receivers);
      // Edge scores: each sender's path effect, (m - m_clean) / (m_clean - m_corrupted), on its
      // edges into the receivers; the circuit keeps the top-n senders.
      scores = at::full({g.n_targets(), g.n_sources()}, NAN, at::kDouble);
      for (int64_t l = 0; l < m->config().n_layers; ++l)
        for (int64_t h = 0; h < m->config().n_heads; ++h) {
          double v = path_grid[l][h].item<double>();
          if (std::isnan(v)) continue;
          for (int t : receivers) scores[t][g.head_source(static_cast<int>(l), static_cast<int>(h))] = v - 1.0;
        }
      at::Tensor head_effect = (path_grid - 1.0).abs().nan_to_num(-1.0).view(-1);
      int64_t k = std::min<int64_t>(top_n, head_effect.numel());
      kept = at::zeros({g.n_targets(), g.n_sources()}, at::kBool);
      at::Tensor top = std::get<1>(head_effect.topk(k)).contiguous();
      for (int64_t j = 0; j < k; ++j) {
        const int64_t i = top[j].item<int64_t>();
        if (head_effect[i].item<double>() < 0) continue;
        int l = static_cast<int>(i / m->config().n_heads), h = static_cast<int>(i % m->config().n_heads);
        for (int t : receivers) kept[t][g.head_source(l, h)] = true;
      }
      res.scores.push_back(head_scores_from_tensor("path_patching", path_grid));
    }
    bar.finish();
    if (intr.cancelled()) {
      (void)db->cancel_run(run, "interrupted");
      throw InputError("interrupted; run " + std::to_string(run) + " marked cancelled", ErrorCode::kInternal);
    }
    nlohmann::json meta = {{"method", method}, {"task", o->task.task}, {"metric_clean", runs.metric_clean},
                           {"metric_corrupted", runs.metric_corrupted}, {"n_edges_total", g.n_edges()}};
    Faithfulness f;
    if (o->evaluate) {
      f = evaluate_circuit(*m, g, task, runs, kept);
      meta["faithfulness"] = f.faithfulness;
      meta["faithfulness_normalized"] = f.normalized;
      meta["metric_circuit"] = f.metric_circuit;
    }
    const std::string name = o->name.empty() ? o->task.task : o->name;
    Circuit circuit = circuit_record(g, kept, scores, name, meta.dump());
    res.circuits.push_back(circuit);
    nlohmann::json axes = {{"kind", "edge_scores"}, {"method", method}};
    for (const auto& t : g.targets()) axes["targets"].push_back(t.name);
    for (const auto& s : g.sources()) axes["sources"].push_back(s.name);
    res.tensors.push_back({"edge_scores", scores.to(at::kFloat), axes.dump()});
    // Per head: the summed |score| of its outgoing edges (comparable across runs head by head).
    at::Tensor out_score = at::zeros({m->config().n_layers, m->config().n_heads}, at::kDouble);
    at::Tensor abs_scores = scores.abs().nan_to_num(0.0);
    for (int64_t l = 0; l < m->config().n_layers; ++l)
      for (int64_t h = 0; h < m->config().n_heads; ++h)
        out_score[l][h] = abs_scores.select(1, g.head_source(static_cast<int>(l), static_cast<int>(h))).sum();
    res.scores.push_back(head_scores_from_tensor("edge_score_out", out_score));
    DlaResult dla = direct_logit_attribution(*m, task);
    res.scores.push_back(head_scores_from_tensor("dla", dla.per_head));
    {
      nlohmann::json dm = {{"kind", "dla_components"}, {"components", dla.components},
                           {"logit_diff", dla.logit_diff}, {"bias_terms", dla.bias_terms}};
      res.tensors.push_back({"dla_components", at::tensor(dla.per_component, at::kDouble).to(at::kFloat), dm.dump()});
    }
    throw_if_failed(db->finish_run(run, res));

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
      if (o->evaluate)
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
    if (o->evaluate)
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
