// Activation patching and circuit discovery from a model and a task to the stored results, shared
// by the run functions behind `mechscope patch` / `mechscope circuit`, batch jobs and the workbench.
#include "runs/circuit_runs.h"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "runs/task_run.h"
#include "storage/circuit_records.h"

namespace ms {

void add_dla_results(const DlaResult& dla, RunResults& res) {
  res.scores.push_back(head_scores_from_tensor("dla", dla.per_head));
  nlohmann::json dm = {{"kind", "dla_components"}, {"components", dla.components},
                       {"logit_diff", dla.logit_diff}, {"bias_terms", dla.bias_terms}};
  if (!dla.notes.empty()) dm["notes"] = dla.notes;
  res.tensors.push_back({"dla_components", at::tensor(dla.per_component, at::kDouble).to(at::kFloat), dm.dump()});
}

PatchRun patch_run(const Model& m, const TaskPairs& task, const PatchOptions& po, const CircuitProgress& progress,
                   const std::atomic<bool>* cancel) {
  PatchRun out;
  Result<PatchGrid> grid = activation_patching(m, task, po, progress, cancel);
  if (!grid) throw InputError(grid.error().message, grid.error().code);
  out.grid = std::move(*grid);
  if (cancel && *cancel) {
    out.cancelled = true;
    return out;
  }
  out.dla = direct_logit_attribution(m, task);
  out.labels = first_prompt_labels(m, task);
  RunResults& res = out.results;
  add_task_results(m, task, res);
  const PatchGrid& g = out.grid;
  nlohmann::json meta = {{"kind", "patching"}, {"what", po.what}, {"axes", g.axes},
                         {"metric_clean", g.metric_clean}, {"metric_corrupted", g.metric_corrupted},
                         {"normalised", "(m - m_corrupted) / (m_clean - m_corrupted), clean patched into corrupted"}};
  if (g.axes.back() == "position") meta["tokens"] = out.labels;
  res.tensors.push_back({"patch_" + po.what, g.values.to(at::kFloat), meta.dump()});
  res.tensors.push_back({"patch_" + po.what + "_raw", g.raw.to(at::kFloat), meta.dump()});
  if (g.axes == std::vector<std::string>{"layer", "head"})
    res.scores.push_back(head_scores_from_tensor("patch_" + po.what, g.values));
  add_dla_results(out.dla, res);
  return out;
}

std::string check_circuit_options(const CircuitOptions& o, bool cli, std::string* option) {
  auto flag = [cli](std::string name) {
    if (!cli) return name;
    for (char& ch : name)
      if (ch == '_') ch = '-';
    return "--" + name;
  };
  auto fail = [&](const std::string& opt, const std::string& msg) {
    *option = opt;
    return msg;
  };
  const std::string& method = o.method;
  if (method != "eap" && method != "eap-ig" && method != "acdc" && method != "path")
    return fail("method", flag("method") + " '" + method + "': expected eap, eap-ig, acdc or path");
  if (o.top_n < 0) return fail("top_n", flag("top_n") + " must not be negative");
  if (o.top_n > 0 && !std::isnan(o.threshold))
    return fail("threshold", "give " + flag("top_n") + " or " + flag("threshold") + ", not both");
  if (method == "acdc" && (o.top_n > 0 || !std::isnan(o.threshold)))
    return fail(o.top_n > 0 ? "top_n" : "threshold",
                "acdc selects its own circuit with " + flag("tau") + "; " + flag("top_n") + " and " +
                    flag("threshold") + " are for eap, eap-ig and path");
  if (o.loss != "kl" && o.loss != "logit-diff") return fail("loss", flag("loss") + " must be kl or logit-diff");
  if (o.ig_steps < 1) return fail("ig_steps", flag("ig_steps") + " must be at least 1");
  return "";
}

std::string parse_receivers(const CircuitGraph& g, const std::string& s, std::vector<int>* out) {
  out->clear();
  std::stringstream ss(s);
  std::string item;
  const ModelConfig& c = g.config();
  while (std::getline(ss, item, ',')) {
    if (item == "logits") {
      out->push_back(g.n_targets() - 1);
      continue;
    }
    try {
      if (item.size() > 1 && item[0] == 'm') {
        int l = std::stoi(item.substr(1));
        if (c.attn_only() || l < 0 || l >= c.n_layers) throw std::out_of_range(item);
        out->push_back(g.group_of(TargetKind::kMlp, l).first);
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
        if (k == 'q') out->push_back(g.group_of(TargetKind::kQ, l).first + h);
        else if (k == 'k') out->push_back(g.group_of(TargetKind::kK, l).first + h / G);
        else if (k == 'v') out->push_back(g.group_of(TargetKind::kV, l).first + h / G);
        else throw std::invalid_argument(item);
      }
    } catch (const std::logic_error&) {
      return "receivers: '" + item + "' is not logits, mLAYER, LAYER.HEAD or LAYER.HEAD:q|k|v within the model";
    }
  }
  if (out->empty()) return "receivers is empty";
  return "";
}

namespace {

// Path patching as edge scores: each sender's path effect, (m - m_clean) / (m_clean -
// m_corrupted), on its edges into the receivers; the circuit keeps the top-n senders.
void path_circuit(const Model& m, const CircuitGraph& g, const TaskPairs& task, const std::vector<int>& receivers,
                  CircuitRun& out) {
  const ModelConfig& c = m.config();
  at::Tensor path_grid = path_patching(m, g, task, out.runs, receivers);
  out.scores = at::full({g.n_targets(), g.n_sources()}, NAN, at::kDouble);
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (int64_t h = 0; h < c.n_heads; ++h) {
      double v = path_grid[l][h].item<double>();
      if (std::isnan(v)) continue;
      for (int t : receivers) out.scores[t][g.head_source(static_cast<int>(l), static_cast<int>(h))] = v - 1.0;
    }
  at::Tensor head_effect = (path_grid - 1.0).abs().nan_to_num(-1.0).view(-1);
  int64_t k = std::min<int64_t>(out.top_n, head_effect.numel());
  out.kept = at::zeros({g.n_targets(), g.n_sources()}, at::kBool);
  at::Tensor top = std::get<1>(head_effect.topk(k)).contiguous();
  for (int64_t j = 0; j < k; ++j) {
    const int64_t i = top[j].item<int64_t>();
    if (head_effect[i].item<double>() < 0) continue;
    int l = static_cast<int>(i / c.n_heads), h = static_cast<int>(i % c.n_heads);
    for (int t : receivers) out.kept[t][g.head_source(l, h)] = true;
  }
  out.results.scores.push_back(head_scores_from_tensor("path_patching", path_grid));
}

}  // namespace

CircuitRun circuit_run(const Model& m, const CircuitGraph& g, const TaskPairs& task, const CircuitOptions& o,
                       const std::string& task_name, const CircuitProgress& progress,
                       const std::atomic<bool>* cancel) {
  CircuitRun out;
  const std::string& method = o.method;
  std::vector<int> receivers;
  if (method == "path") {
    std::string err = parse_receivers(g, o.receivers, &receivers);
    if (!err.empty()) throw InputError(err, ErrorCode::kUsage);
  }
  out.top_n = o.top_n > 0 ? o.top_n : (method == "path" ? 10 : 20);
  out.runs = run_task(m, g, task);
  RunResults& res = out.results;
  add_task_results(m, task, res);
  if (method == "eap" || method == "eap-ig") {
    out.scores = edge_attribution(m, g, task, out.runs, method == "eap-ig" ? o.ig_steps : 0).scores;
    out.kept = std::isnan(o.threshold) ? select_top_n(g, out.scores, out.top_n) : select_threshold(g, out.scores, o.threshold);
  } else if (method == "acdc") {
    AcdcOptions ao;
    ao.tau = o.tau;
    ao.kl = o.loss == "kl";
    AcdcResult r = acdc(m, g, task, out.runs, ao, progress, cancel);
    out.scores = r.scores.scores;
    out.kept = prune_dangling(g, r.kept);
    out.acdc_tested = r.n_tested;
  } else {
    path_circuit(m, g, task, receivers, out);
  }
  if (cancel && *cancel) {
    out.cancelled = true;
    return out;
  }
  nlohmann::json meta = {{"method", method}, {"task", task_name}, {"metric_clean", out.runs.metric_clean},
                         {"metric_corrupted", out.runs.metric_corrupted}, {"n_edges_total", g.n_edges()}};
  if (method == "acdc") meta["acdc_tested"] = out.acdc_tested;
  if (o.evaluate) {
    out.faithfulness = evaluate_circuit(m, g, task, out.runs, out.kept);
    meta["faithfulness"] = out.faithfulness.faithfulness;
    meta["faithfulness_normalized"] = out.faithfulness.normalized;
    meta["metric_circuit"] = out.faithfulness.metric_circuit;
  }
  out.circuit = circuit_record(g, out.kept, out.scores, o.name.empty() ? task_name : o.name, meta.dump());
  res.circuits.push_back(out.circuit);
  nlohmann::json axes = {{"kind", "edge_scores"}, {"method", method}};
  for (const auto& t : g.targets()) axes["targets"].push_back(t.name);
  for (const auto& s : g.sources()) axes["sources"].push_back(s.name);
  res.tensors.push_back({"edge_scores", out.scores.to(at::kFloat), axes.dump()});
  // Per head: the summed |score| of its outgoing edges (comparable across runs head by head).
  const ModelConfig& c = m.config();
  at::Tensor out_score = at::zeros({c.n_layers, c.n_heads}, at::kDouble);
  at::Tensor abs_scores = out.scores.abs().nan_to_num(0.0);
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (int64_t h = 0; h < c.n_heads; ++h)
      out_score[l][h] = abs_scores.select(1, g.head_source(static_cast<int>(l), static_cast<int>(h))).sum();
  res.scores.push_back(head_scores_from_tensor("edge_score_out", out_score));
  out.dla = direct_logit_attribution(m, task);
  add_dla_results(out.dla, res);
  return out;
}

}  // namespace ms
