// The fields of `mechscope runs show` (see run_show.h), moved here from app/commands/cmd_runs.cpp
// so that the CLI and the Runs window print the same text.
#include "report/run_show.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace ms::report {

MetricSummary summarize_metric(const HeadScores& h) {
  MetricSummary m;
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  int best = -1;
  for (size_t i = 0; i < h.values.size(); ++i) {
    double v = h.values[i];
    if (std::isnan(v)) continue;
    lo = std::min(lo, v);
    if (v > hi) best = static_cast<int>(i);
    hi = std::max(hi, v);
    sum += v;
    ++m.n;
  }
  if (m.n) {
    m.min = lo, m.max = hi, m.mean = sum / m.n;
    m.argmax_layer = best / h.n_heads, m.argmax_head = best % h.n_heads;
  }
  return m;
}

Result<std::vector<RunField>> run_show_fields(Database& db, int64_t id) {
  Result<RunInfo> rr = db.get_run(id);
  if (!rr) return rr.error();
  const RunInfo& r = *rr;
  std::vector<RunField> out;
  auto field = [&](const char* k, const std::string& v) {
    if (!v.empty()) out.push_back({k, v});
  };
  if (r.spec.model_id > 0) {
    Result<ModelInfo> model = db.get_model(r.spec.model_id);
    if (!model) return model.error();
    field("model", std::to_string(model->id) + " " + (model->path.empty() ? "(in memory)" : model->path) + " (" +
                       model->architecture + ", " + std::to_string(model->n_params) + " parameters, " +
                       model->content_hash + ")");
  }
  auto inputs = db.get_inputs(id);
  auto scores = db.get_head_scores(id);
  auto tensors = db.list_tensors(id);
  auto circuits = db.get_circuits(id);
  auto links = db.get_links(id);
  auto features = db.get_feature_cards(id, {}, true);
  if (!inputs) return inputs.error();
  if (!scores) return scores.error();
  if (!tensors) return tensors.error();
  if (!circuits) return circuits.error();
  if (!links) return links.error();
  if (!features) return features.error();
  field("label", r.spec.label);
  field("params", r.spec.params_json);
  field("command", r.spec.command);
  field("version", r.mechscope_version);
  field("created", r.created_at);
  field("started", r.started_at);
  field("finished", r.finished_at);
  if (r.status == RunStatus::kRunning) field("progress", std::to_string(static_cast<int>(r.progress * 100)) + "%");
  field("resume key", r.spec.resume_key);
  field("error", r.error);
  field("inputs", std::to_string(inputs->size()));
  for (const HeadScores& h : *scores) {
    MetricSummary m = summarize_metric(h);
    std::string line = h.metric + ": " + std::to_string(h.n_layers) + " x " + std::to_string(h.n_heads);
    if (m.n) {
      char buf[128];
      std::snprintf(buf, sizeof buf, ", min %.4g, max %.4g at L%dH%d, mean %.4g", m.min, m.max, m.argmax_layer,
                    m.argmax_head, m.mean);
      line += buf;
    }
    field("metric", line);
  }
  for (const TensorInfo& t : *tensors)
    field("tensor", t.name + " " + t.dtype + " " + nlohmann::json(t.shape).dump() + " (" + std::to_string(t.raw_bytes) +
                        " bytes, " + std::to_string(t.stored_bytes) + " stored)");
  for (const Circuit& c : *circuits)
    field("circuit", c.name + ": " + std::to_string(c.nodes.size()) + " nodes, " + std::to_string(c.edges.size()) +
                         " edges");
  if (!features->empty()) {
    std::vector<const FeatureCard*> busiest;
    for (const FeatureCard& c : *features) busiest.push_back(&c);
    std::stable_sort(busiest.begin(), busiest.end(), [](auto* a, auto* b) { return a->n_firing > b->n_firing; });
    std::string line = std::to_string(features->size()) + " feature cards; most frequent:";
    for (size_t i = 0; i < busiest.size() && i < 5; ++i) {
      char buf[96];
      std::snprintf(buf, sizeof buf, " %lld (density %.3g, max %.3g)", static_cast<long long>(busiest[i]->feature),
                    busiest[i]->density(), busiest[i]->max_act);
      line += buf;
    }
    field("features", line);
  }
  for (const RunLink& l : *links)
    field("link", "run " + std::to_string(l.run_id) + " " + l.relation + " run " + std::to_string(l.source_run_id));
  return out;
}

}  // namespace ms::report
