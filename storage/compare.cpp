// Head-by-head comparison of two runs' scores with summary statistics.
#include "storage/compare.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace ms {

MetricComparison compare_scores(const HeadScores& a, const HeadScores& b) {
  MetricComparison m;
  m.metric = a.metric;
  int layers = std::max(a.n_layers, b.n_layers), heads = std::max(a.n_heads, b.n_heads);
  auto value = [](const HeadScores& s, int l, int h) {
    return l < s.n_layers && h < s.n_heads ? s.at(l, h) : NAN;
  };
  for (int l = 0; l < layers; ++l)
    for (int h = 0; h < heads; ++h) {
      double va = value(a, l, h), vb = value(b, l, h);
      bool has_a = !std::isnan(va), has_b = !std::isnan(vb);
      if (has_a && has_b) m.heads.push_back({l, h, va, vb, vb - va});
      else if (has_a) ++m.only_a;
      else if (has_b) ++m.only_b;
    }
  m.n_common = static_cast<int>(m.heads.size());
  std::stable_sort(m.heads.begin(), m.heads.end(),
                   [](const HeadDiff& x, const HeadDiff& y) { return std::fabs(x.diff) > std::fabs(y.diff); });
  double sa = 0, sb = 0, sum_abs = 0;
  for (const HeadDiff& d : m.heads) {
    sa += d.a;
    sb += d.b;
    sum_abs += std::fabs(d.diff);
    m.max_abs_diff = std::max(m.max_abs_diff, std::fabs(d.diff));
  }
  m.pearson = NAN;
  if (m.n_common == 0) return m;
  double n = m.n_common, ma = sa / n, mb = sb / n;
  m.mean_abs_diff = sum_abs / n;
  double cov = 0, va = 0, vb = 0;
  for (const HeadDiff& d : m.heads) {
    cov += (d.a - ma) * (d.b - mb);
    va += (d.a - ma) * (d.a - ma);
    vb += (d.b - mb) * (d.b - mb);
  }
  if (m.n_common >= 2 && va > 0 && vb > 0) m.pearson = cov / std::sqrt(va * vb);
  return m;
}

namespace {
// (layers, heads) from a stored model's config JSON (TransformerLens names); (0, 0) when absent.
std::pair<int64_t, int64_t> model_shape(const ModelInfo& m) {
  nlohmann::json j = nlohmann::json::parse(m.config_json, nullptr, false);
  if (!j.is_object()) return {0, 0};
  auto get = [&](const char* k) { return j.contains(k) && j[k].is_number_integer() ? j[k].get<int64_t>() : 0; };
  return {get("n_layers"), get("n_heads")};
}
}  // namespace

Result<RunComparison> compare_runs(Database& db, int64_t run_a, int64_t run_b, const CompareOptions& opts) {
  const std::string& metric = opts.metric;
  RunComparison c;
  Result<RunInfo> a = db.get_run(run_a);
  if (!a) return a.error();
  Result<RunInfo> b = db.get_run(run_b);
  if (!b) return b.error();
  c.a = *a;
  c.b = *b;
  const int64_t ma = a->spec.model_id, mb = b->spec.model_id;
  if (ma > 0 && mb > 0 && ma != mb) {
    Result<ModelInfo> ia = db.get_model(ma);
    if (!ia) return ia.error();
    Result<ModelInfo> ib = db.get_model(mb);
    if (!ib) return ib.error();
    c.model_a = ia->path;
    c.model_b = ib->path;
    c.same_model = ia->content_hash == ib->content_hash && !ia->content_hash.empty();
    if (!c.same_model) {
      auto name = [](const ModelInfo& m) { return (m.path.empty() ? "an in-memory model" : m.path) + " (" + m.content_hash.substr(0, 19) + ")"; };
      const std::string both = "run " + std::to_string(run_a) + " is of " + name(*ia) + " and run " + std::to_string(run_b) +
                               " of " + name(*ib);
      if (!opts.across_models)
        return Error{ErrorCode::kUsage, db.path() + ": " + both + ", two different models: head L.H of one is not head L.H "
                                        "of the other. Pass --across-models to match their heads by layer and head anyway"};
      auto sa = model_shape(*ia), sb = model_shape(*ib);
      if (sa != sb)
        return Error{ErrorCode::kUsage, db.path() + ": " + both + ", whose shapes differ (" + std::to_string(sa.first) + "x" +
                                        std::to_string(sa.second) + " and " + std::to_string(sb.first) + "x" +
                                        std::to_string(sb.second) + " layers x heads): their heads cannot be matched"};
      c.note = both + ": two different models of the same shape, heads matched by layer.head as asked";
    }
  } else if (ma > 0 || mb > 0) {
    if (Result<ModelInfo> i = db.get_model(ma > 0 ? ma : mb)) c.model_a = c.model_b = i->path;
  }
  Result<std::vector<HeadScores>> sa = db.get_head_scores(run_a);
  if (!sa) return sa.error();
  Result<std::vector<HeadScores>> sb = db.get_head_scores(run_b);
  if (!sb) return sb.error();
  std::map<std::string, const HeadScores*> in_b;
  for (const HeadScores& s : *sb) in_b[s.metric] = &s;
  for (const HeadScores& s : *sa) {
    if (!metric.empty() && s.metric != metric) continue;
    auto it = in_b.find(s.metric);
    if (it == in_b.end()) {
      c.only_a.push_back(s.metric);
      continue;
    }
    c.metrics.push_back(compare_scores(s, *it->second));
    in_b.erase(it);
  }
  for (const auto& [name, s] : in_b)
    if (metric.empty() || name == metric) c.only_b.push_back(name);
  Result<std::vector<Circuit>> ca = db.get_circuits(run_a);
  if (!ca) return ca.error();
  Result<std::vector<Circuit>> cb = db.get_circuits(run_b);
  if (!cb) return cb.error();
  for (const Circuit& x : *ca)
    for (const Circuit& y : *cb)
      if (x.name == y.name) c.circuits.push_back(compare_circuits(x, y));
  if (c.circuits.empty() && !ca->empty() && !cb->empty()) c.circuits.push_back(compare_circuits(ca->front(), cb->front()));
  if (!metric.empty() && c.metrics.empty())
    return Error{ErrorCode::kUsage, db.path() + ": metric '" + metric + "' is not in both run " +
                                        std::to_string(run_a) + " and run " + std::to_string(run_b) +
                                        "; `mechscope runs show ID` lists a run's metrics"};
  return c;
}

}  // namespace ms
