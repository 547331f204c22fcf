// Colormaps for heatmaps: viridis for magnitudes, a blue-white-red diverging map for signed values
// (attributions). Pure functions on plain data, shared by the reports and, later, the GUI.
#pragma once

#include <cstdint>
#include <vector>

namespace ms {

enum class Colormap { kViridis, kDiverging };

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

// The colour at t in [0, 1] (clamped; NaN gives mid grey so missing cells stand out).
Rgb colormap_at(Colormap map, double t);

// The value range a heatmap should use: viridis from min to max; the diverging map symmetric
// around zero (-m..m with m = max |value|) so that white always means zero. NaNs are ignored.
struct ColorScale {
  Colormap map = Colormap::kViridis;
  double lo = 0.0, hi = 1.0;
  double normalize(double v) const;  // v -> t in [0, 1]
};
// Diverging when `signed_values` or when the data has both signs; viridis otherwise.
ColorScale color_scale_for(const std::vector<double>& values, bool signed_values = false);

// An 8-bit RGB image, rows top to bottom.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3
};

// A rows x cols matrix (row-major, NaN = no value) as an image with each cell drawn as a
// cell_w x cell_h block, optionally with a 1-pixel white gap between cells.
RgbImage heatmap_image(const std::vector<double>& values, int rows, int cols, const ColorScale& scale,
                       int cell_w, int cell_h, bool gaps = false);
// A vertical colour bar (top = hi, bottom = lo).
RgbImage colorbar_image(const ColorScale& scale, int width, int height);

}  // namespace ms
