// Heatmap pyramid (max pooling), colour ranges and colouring; see heatmap_data.h.
#include "views/heatmap_data.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/base/colormap.h"

namespace ms::views {

namespace {
HeatLevel pool2(const HeatLevel& in) {
  HeatLevel out;
  out.rows = (in.rows + 1) / 2;
  out.cols = (in.cols + 1) / 2;
  out.factor = in.factor * 2;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  out.values.assign(static_cast<size_t>(out.rows) * out.cols, nan);
  for (int r = 0; r < in.rows; ++r) {
    const float* src = in.values.data() + static_cast<size_t>(r) * in.cols;
    float* dst = out.values.data() + static_cast<size_t>(r / 2) * out.cols;
    for (int c = 0; c < in.cols; ++c) {
      float v = src[c];
      if (std::isnan(v)) continue;
      float& d = dst[c / 2];
      if (std::isnan(d) || v > d) d = v;
    }
  }
  return out;
}
}  // namespace

std::vector<HeatLevel> build_pyramid(const float* values, int rows, int cols, int min_side) {
  std::vector<HeatLevel> levels(1);
  levels[0].rows = rows;
  levels[0].cols = cols;
  levels[0].values.assign(values, values + static_cast<size_t>(rows) * cols);
  while (levels.back().rows > min_side || levels.back().cols > min_side) levels.push_back(pool2(levels.back()));
  return levels;
}

int choose_level(const std::vector<HeatLevel>& pyramid, double cells_per_pixel) {
  int best = 0;
  for (size_t k = 0; k < pyramid.size(); ++k)
    if (pyramid[k].factor <= cells_per_pixel) best = static_cast<int>(k);
  return best;
}

const char* heat_scale_name(HeatScale s) {
  switch (s) {
    case HeatScale::kLinear: return "linear";
    case HeatScale::kLog: return "log";
    case HeatScale::kSinkClipped: return "sink-clipped";
    case HeatScale::kSigned: return "signed";
  }
  return "?";
}

bool parse_heat_scale(const std::string& s, HeatScale* out) {
  for (HeatScale v : {HeatScale::kLinear, HeatScale::kLog, HeatScale::kSinkClipped})
    if (s == heat_scale_name(v)) {
      *out = v;
      return true;
    }
  return false;
}

double HeatRange::normalize(double v) const {
  if (std::isnan(v)) return v;
  double t;
  if (scale == HeatScale::kLog) {
    double x = std::max(v, lo);
    t = (std::log(x) - std::log(lo)) / std::max(1e-12, std::log(hi) - std::log(lo));
  } else {
    t = (v - lo) / std::max(1e-12, hi - lo);
  }
  return std::clamp(t, 0.0, 1.0);
}

HeatRange sink_clipped_range(double max_all, double max_rest, double sink_floor) {
  HeatRange r;
  r.scale = HeatScale::kSinkClipped;
  r.max_rest = max_rest;
  if (max_all <= 0) max_all = 1;
  r.lo = 0;
  r.hi = std::min(max_all, std::max(max_rest, sink_floor));
  if (!(r.hi > 0)) r.hi = max_all;
  r.floored = r.hi > max_rest;
  return r;
}

namespace {
void maxima(const float* values, int rows, int cols, double* max_all, double* max_rest, double* min_pos,
            double* max_abs = nullptr) {
  *max_all = 0, *max_rest = 0, *min_pos = std::numeric_limits<double>::infinity();
  double abs_max = 0;
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      double v = values[static_cast<size_t>(i) * cols + j];
      if (std::isnan(v)) continue;
      *max_all = std::max(*max_all, v);
      if (j > 0) *max_rest = std::max(*max_rest, v);
      if (v > 0) *min_pos = std::min(*min_pos, v);
      abs_max = std::max(abs_max, std::fabs(v));
    }
  if (max_abs) *max_abs = abs_max;
}
}  // namespace

HeatRange heat_range(const float* values, int rows, int cols, HeatScale scale, double sink_floor) {
  HeatRange r;
  r.scale = scale;
  double max_all, max_rest, min_pos, max_abs;
  maxima(values, rows, cols, &max_all, &max_rest, &min_pos, &max_abs);
  if (scale == HeatScale::kSinkClipped) return sink_clipped_range(max_all, max_rest, sink_floor);
  if (max_all <= 0) max_all = 1;
  switch (scale) {
    case HeatScale::kLinear:
      r.lo = 0, r.hi = max_all;
      break;
    case HeatScale::kLog:
      r.hi = max_all;
      r.lo = std::max(std::isfinite(min_pos) ? min_pos : max_all * 1e-4, max_all * 1e-4);
      if (r.lo >= r.hi) r.lo = r.hi * 1e-4;
      break;
    case HeatScale::kSinkClipped:
      break;  // above
    case HeatScale::kSigned:
      if (max_abs <= 0) max_abs = 1;
      r.lo = -max_abs, r.hi = max_abs;
      break;
  }
  return r;
}

std::shared_ptr<const PreparedHeatmap> prepare_heatmap(const float* values, int rows, int cols) {
  auto p = std::make_shared<PreparedHeatmap>();
  p->levels = build_pyramid(values, rows, cols);
  for (HeatScale s : {HeatScale::kLinear, HeatScale::kLog, HeatScale::kSinkClipped, HeatScale::kSigned})
    p->ranges[static_cast<int>(s)] = heat_range(values, rows, cols, s);
  double min_pos;
  maxima(values, rows, cols, &p->max_all, &p->max_rest, &min_pos);
  return p;
}

void colorize(const HeatLevel& level, const HeatRange& range, std::vector<uint8_t>& rgba) {
  rgba.resize(static_cast<size_t>(level.rows) * level.cols * 4);
  // A 1024-entry table: colormap_at per texel would dominate at 4096 x 4096.
  constexpr int kLut = 1024;
  auto make_lut = [](Colormap map) {
    std::vector<Rgb> t(kLut);
    for (int i = 0; i < kLut; ++i) t[i] = colormap_at(map, i / double(kLut - 1));
    return t;
  };
  static const std::vector<Rgb> viridis = make_lut(Colormap::kViridis), diverging = make_lut(Colormap::kDiverging);
  const std::vector<Rgb>& lut = range.scale == HeatScale::kSigned ? diverging : viridis;
  uint8_t* p = rgba.data();
  for (float v : level.values) {
    if (std::isnan(v)) {
      p[0] = p[1] = p[2] = 40;
    } else {
      const Rgb& c = lut[static_cast<size_t>(range.normalize(v) * (kLut - 1) + 0.5)];
      p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }
    p[3] = 255;
    p += 4;
  }
}

}  // namespace ms::views
