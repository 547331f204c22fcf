// Stored tensors as figures and the difference of two runs' grids; see run_figures.h.
#include "views/run_figures.h"

#include <ATen/ATen.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/base/json_input.h"
#include "report/report_common.h"

namespace ms::views {

namespace {
std::vector<std::string> labels_of(const nlohmann::json& meta, const char* key, int n) {
  std::vector<std::string> out;
  if (!meta.is_object() || !meta.contains(key) || !meta[key].is_array() || static_cast<int>(meta[key].size()) != n)
    return out;
  for (const auto& v : meta[key]) {
    if (v.is_string()) out.push_back(v.get<std::string>());
    else if (v.is_number_integer()) out.push_back(std::to_string(v.get<long long>()));
    else if (v.is_number()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3g", v.get<double>());
      out.push_back(buf);
    } else return {};
  }
  return out;
}
std::string str(const nlohmann::json& meta, const char* key) {
  return meta.is_object() && meta.contains(key) && meta[key].is_string() ? meta[key].get<std::string>() : "";
}
}  // namespace

std::optional<TensorFigure> tensor_figure(Database& db, int64_t run_id, const TensorInfo& t, std::string* why) {
  std::vector<int64_t> shape;
  for (int64_t d : t.shape)
    if (d != 1) shape.push_back(d);
  if (shape.empty() && !t.shape.empty()) shape.push_back(1);
  if (t.dtype == "bool" || shape.size() > 2 || shape.empty()) {
    *why = t.dtype == "bool" ? "a bool tensor" : std::to_string(shape.size()) + "-D: not drawn";
    return std::nullopt;
  }
  nlohmann::json meta = parse_json_or_discarded(t.meta_json);
  TensorFigure f;
  f.value_title = str(meta, "unit");
  if (f.value_title.empty()) f.value_title = t.name;
  try {
    if (shape.size() == 1) {
      Result<at::Tensor> r = db.get_tensor(run_id, t.name);
      if (!r) {
        *why = r.error().message;
        return std::nullopt;
      }
      at::Tensor x = r->reshape({-1}).to(at::kDouble).contiguous();
      f.rank = 1;
      f.cols = static_cast<int>(x.numel());
      f.values.assign(x.data_ptr<double>(), x.data_ptr<double>() + x.numel());
      f.col_title = str(meta, "x");
      f.value_title = str(meta, "y").empty() ? f.value_title : str(meta, "y");
      return f;
    }
    TensorInfo t2 = t;
    t2.shape = shape;
    std::optional<report::Matrix> m = report::load_matrix(db, run_id, t2);
    if (!m) {
      *why = "not drawable";
      return std::nullopt;
    }
    f.rank = 2;
    f.rows = m->rows, f.cols = m->cols, f.row_step = m->row_step, f.col_step = m->col_step;
    f.values = std::move(m->values);
    // At most kMaxGridSide cells a side (a grid is drawn as rectangles): block means again.
    const int fr = (f.rows + kMaxGridSide - 1) / kMaxGridSide, fc = (f.cols + kMaxGridSide - 1) / kMaxGridSide;
    if (fr > 1 || fc > 1) {
      int rows = (f.rows + fr - 1) / fr, cols = (f.cols + fc - 1) / fc;
      std::vector<double> sum(static_cast<size_t>(rows) * cols, 0.0), n(sum.size(), 0.0);
      for (int r = 0; r < f.rows; ++r)
        for (int c = 0; c < f.cols; ++c) {
          double v = f.values[static_cast<size_t>(r) * f.cols + c];
          if (std::isnan(v)) continue;
          sum[static_cast<size_t>(r / fr) * cols + c / fc] += v;
          n[static_cast<size_t>(r / fr) * cols + c / fc] += 1;
        }
      for (size_t i = 0; i < sum.size(); ++i) sum[i] = n[i] > 0 ? sum[i] / n[i] : NAN;
      f.values = std::move(sum);
      f.rows = rows, f.cols = cols, f.row_step *= fr, f.col_step *= fc;
    }
  } catch (const std::exception& e) {
    *why = e.what();
    return std::nullopt;
  }
  // Axis names: "axes": [row, col] (retrieval's accuracy: length x depth, with "lengths" and
  // "depths" as labels); per-head tensors of a model's shape read as layer x head.
  if (meta.is_object() && meta.contains("axes") && meta["axes"].is_array() && meta["axes"].size() == 2 &&
      meta["axes"][0].is_string() && meta["axes"][1].is_string()) {
    f.row_title = meta["axes"][0].get<std::string>();
    f.col_title = meta["axes"][1].get<std::string>();
  } else if (str(meta, "kind") == "head-score") {
    f.row_title = "layer", f.col_title = "head";
  }
  if (f.row_step == 1) f.row_labels = labels_of(meta, (f.row_title + "s").c_str(), f.rows);
  if (f.col_step == 1) f.col_labels = labels_of(meta, (f.col_title + "s").c_str(), f.cols);
  if (str(meta, "kind") == "edge_scores") {  // circuit edge scores: [targets, sources]
    f.row_title = "target", f.col_title = "source";
    if (f.row_step == 1) f.row_labels = labels_of(meta, "targets", f.rows);
    if (f.col_step == 1) f.col_labels = labels_of(meta, "sources", f.cols);
  }
  return f;
}

std::optional<HeadScores> difference_grid(const HeadScores& a, const HeadScores& b) {
  if (a.n_layers != b.n_layers || a.n_heads != b.n_heads || a.values.size() != b.values.size()) return std::nullopt;
  HeadScores d;
  d.metric = a.metric + " (A - B)";
  d.n_layers = a.n_layers, d.n_heads = a.n_heads;
  d.values.resize(a.values.size());
  for (size_t i = 0; i < a.values.size(); ++i) d.values[i] = a.values[i] - b.values[i];  // NaN propagates
  return d;
}

ColorScale symmetric_scale(const std::vector<double>& values) {
  double m = 0;
  for (double v : values)
    if (!std::isnan(v)) m = std::max(m, std::fabs(v));
  ColorScale s;
  s.map = Colormap::kDiverging;
  s.lo = -(m > 0 ? m : 1), s.hi = m > 0 ? m : 1;
  return s;
}

ColorScale joint_scale(const HeadScores& a, const HeadScores& b, bool absolute) {
  std::vector<double> all = a.values;
  all.insert(all.end(), b.values.begin(), b.values.end());
  bool unit = true;
  for (double v : all) unit = unit && (std::isnan(v) || (v >= 0 && v <= 1));
  if (unit && absolute) return ColorScale{Colormap::kViridis, 0.0, 1.0};
  return color_scale_for(all);
}

}  // namespace ms::views
