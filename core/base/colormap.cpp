// Colormap tables and heatmap rasterisation. The maps are linear interpolations between a few
// control points (sRGB): viridis sampled at 11 evenly spaced points, and a blue-white-red map.
#include "core/base/colormap.h"

#include <algorithm>
#include <cmath>

namespace ms {
namespace {

// viridis at t = 0, 0.1, ..., 1.
constexpr uint8_t kViridis[][3] = {
    {0x44, 0x01, 0x54}, {0x48, 0x24, 0x75}, {0x41, 0x44, 0x87}, {0x35, 0x5f, 0x8d},
    {0x2a, 0x78, 0x8e}, {0x21, 0x91, 0x8c}, {0x22, 0xa8, 0x84}, {0x44, 0xbf, 0x70},
    {0x7a, 0xd1, 0x51}, {0xbd, 0xdf, 0x26}, {0xfd, 0xe7, 0x25}};

// Diverging: dark blue (most negative) through near-white (zero) to dark red (most positive).
constexpr uint8_t kDiverging[][3] = {
    {0x1d, 0x4e, 0x96}, {0x3b, 0x7d, 0xbf}, {0x86, 0xb6, 0xdc}, {0xc9, 0xdf, 0xee},
    {0xf7, 0xf7, 0xf7}, {0xf6, 0xd3, 0xc2}, {0xe8, 0x93, 0x7a}, {0xc9, 0x4a, 0x3e},
    {0x8e, 0x12, 0x24}};

template <size_t N>
Rgb interpolate(const uint8_t (&table)[N][3], double t) {
  double x = t * static_cast<double>(N - 1);
  size_t i = std::min(static_cast<size_t>(x), N - 2);
  double f = x - static_cast<double>(i);
  Rgb c;
  uint8_t* out[3] = {&c.r, &c.g, &c.b};
  for (int k = 0; k < 3; ++k) {
    double v = table[i][k] + f * (table[i + 1][k] - table[i][k]);
    *out[k] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
  }
  return c;
}

void fill_block(RgbImage& img, int x0, int y0, int w, int h, Rgb c) {
  for (int y = y0; y < y0 + h && y < img.height; ++y) {
    uint8_t* row = img.pixels.data() + (static_cast<size_t>(y) * img.width + x0) * 3;
    for (int x = 0; x < w && x0 + x < img.width; ++x) {
      row[3 * x] = c.r;
      row[3 * x + 1] = c.g;
      row[3 * x + 2] = c.b;
    }
  }
}

}  // namespace

Rgb colormap_at(Colormap map, double t) {
  if (std::isnan(t)) return Rgb{0x9a, 0x9a, 0x9a};
  t = std::clamp(t, 0.0, 1.0);
  return map == Colormap::kViridis ? interpolate(kViridis, t) : interpolate(kDiverging, t);
}

double ColorScale::normalize(double v) const {
  if (std::isnan(v)) return v;
  if (!(hi > lo)) return map == Colormap::kDiverging ? 0.5 : 0.0;
  return std::clamp((v - lo) / (hi - lo), 0.0, 1.0);
}

ColorScale color_scale_for(const std::vector<double>& values, bool signed_values) {
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values) {
    if (std::isnan(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  ColorScale s;
  if (lo > hi) return s;  // no values: 0..1 viridis
  if (signed_values || (lo < 0 && hi > 0)) {
    double m = std::max(std::fabs(lo), std::fabs(hi));
    s.map = Colormap::kDiverging;
    s.lo = -m;
    s.hi = m;
    return s;
  }
  s.lo = lo;
  s.hi = hi;
  return s;
}

RgbImage heatmap_image(const std::vector<double>& values, int rows, int cols, const ColorScale& scale,
                       int cell_w, int cell_h, bool gaps) {
  RgbImage img;
  if (rows <= 0 || cols <= 0 || cell_w <= 0 || cell_h <= 0) return img;
  int gap = gaps ? 1 : 0;
  img.width = cols * cell_w;
  img.height = rows * cell_h;
  img.pixels.assign(static_cast<size_t>(img.width) * img.height * 3, 255);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      size_t i = static_cast<size_t>(r) * cols + c;
      double v = i < values.size() ? values[i] : NAN;
      Rgb color = colormap_at(scale.map, scale.normalize(v));
      fill_block(img, c * cell_w, r * cell_h, cell_w - gap, cell_h - gap, color);
    }
  }
  return img;
}

RgbImage colorbar_image(const ColorScale& scale, int width, int height) {
  RgbImage img;
  if (width <= 0 || height <= 0) return img;
  img.width = width;
  img.height = height;
  img.pixels.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    double t = height == 1 ? 1.0 : 1.0 - static_cast<double>(y) / (height - 1);
    fill_block(img, 0, y, width, 1, colormap_at(scale.map, t));
  }
  return img;
}

}  // namespace ms
