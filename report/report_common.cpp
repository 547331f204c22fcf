// Shared report pieces: loading a run's contents, number and file-name formatting, top-k heads,
// and the heatmap images every format embeds or writes.
#include "report/report_common.h"
#include "core/base/json_input.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace ms {

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace report {
namespace {

template <class T>
T take(Result<T> r) {
  if (!r) throw InputError(r.error().message, r.error().code);
  return std::move(*r);
}

}  // namespace

Bundle load_bundle(Database& db, int64_t run_id) {
  Bundle b;
  b.run = take(db.get_run(run_id));
  if (b.run.spec.model_id > 0) b.model = take(db.get_model(b.run.spec.model_id));
  b.inputs = take(db.get_inputs(run_id));
  b.scores = take(db.get_head_scores(run_id));
  b.tensors = take(db.list_tensors(run_id));
  b.circuits = take(db.get_circuits(run_id));
  b.links = take(db.get_links(run_id));
  b.features = take(db.get_feature_cards(run_id));
  return b;
}

std::string fmt(double v) {
  if (std::isnan(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string fmt_exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string fmt_count(int64_t n) {
  const char* units[] = {"", "K", "M", "B", "T"};
  double v = static_cast<double>(n);
  int u = 0;
  while (std::fabs(v) >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.3g%s" : "%.0f%s", v, units[u]);
  return buf;
}

std::string file_safe(const std::string& s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-' || c == '_';
    out += ok ? c : '_';
  }
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out.substr(0, 100);
}

bool is_signed_metric(const HeadScores& s) {
  for (const char* key : {"dla", "attribution", "logit_diff", "delta", "diff"})
    if (s.metric.find(key) != std::string::npos) return true;
  for (double v : s.values)
    if (v < 0) return true;
  return false;
}

ColorScale scale_for(const HeadScores& s) { return color_scale_for(s.values, is_signed_metric(s)); }

RgbImage scores_image(const HeadScores& s, const ColorScale& scale, int& cell) {
  int by_width = s.n_heads > 0 ? 416 / s.n_heads : 32;
  int by_height = s.n_layers > 0 ? 520 / s.n_layers : 32;
  cell = std::clamp(std::min(by_width, by_height), 4, 32);
  return heatmap_image(s.values, s.n_layers, s.n_heads, scale, cell, cell, cell >= 12);
}

std::vector<TopHead> top_heads(const HeadScores& s, int k) {
  bool by_abs = is_signed_metric(s);
  std::vector<TopHead> all;
  for (int l = 0; l < s.n_layers; ++l)
    for (int h = 0; h < s.n_heads; ++h)
      if (!std::isnan(s.at(l, h))) all.push_back({l, h, s.at(l, h)});
  auto key = [by_abs](const TopHead& t) { return by_abs ? std::fabs(t.value) : t.value; };
  std::stable_sort(all.begin(), all.end(), [&](const TopHead& a, const TopHead& b) { return key(a) > key(b); });
  if (k >= 0 && static_cast<size_t>(k) < all.size()) all.resize(static_cast<size_t>(k));
  return all;
}

std::optional<Matrix> load_matrix(Database& db, int64_t run_id, const TensorInfo& t) {
  std::vector<int64_t> shape;
  for (int64_t d : t.shape)
    if (d != 1 || !shape.empty()) shape.push_back(d);
  while (shape.size() < 2 && t.shape.size() >= 2) shape.insert(shape.begin(), 1);
  if (shape.size() != 2 || shape[0] * shape[1] == 0 || shape[0] > 65536 || shape[1] > 65536) return std::nullopt;
  if (t.dtype == "bool") return std::nullopt;
  Result<at::Tensor> r = db.get_tensor(run_id, t.name);
  if (!r) throw InputError(r.error().message, r.error().code);
  at::Tensor x = r->reshape({shape[0], shape[1]}).to(at::kDouble);
  Matrix m;
  m.row_step = static_cast<int>((shape[0] + kMaxSide - 1) / kMaxSide);
  m.col_step = static_cast<int>((shape[1] + kMaxSide - 1) / kMaxSide);
  if (m.row_step > 1 || m.col_step > 1) {  // block means; a ragged last block is averaged too
    x = at::adaptive_avg_pool2d(x.unsqueeze(0), {(shape[0] + m.row_step - 1) / m.row_step,
                                                 (shape[1] + m.col_step - 1) / m.col_step})[0];
  }
  x = x.contiguous();
  m.rows = static_cast<int>(x.size(0));
  m.cols = static_cast<int>(x.size(1));
  m.values.assign(x.data_ptr<double>(), x.data_ptr<double>() + x.numel());
  return m;
}

std::string meta_string(const std::string& meta_json, const char* key) {
  nlohmann::json j = ms::parse_json_or_discarded(meta_json);
  if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  return "";
}

int meta_int(const std::string& meta_json, const char* key, int fallback) {
  nlohmann::json j = ms::parse_json_or_discarded(meta_json);
  if (j.is_object() && j.contains(key) && j[key].is_number_integer()) return j[key].get<int>();
  return fallback;
}

}  // namespace report
}  // namespace ms
