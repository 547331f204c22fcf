// Heatmap data on the CPU, no OpenGL: the max-pooled level-of-detail pyramid of a matrix and the
// colour scales (linear, log, sink-clipped) that turn values into RGBA texels. Testable headless.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ms::views {

// One level of the pyramid: level k max-pools blocks of factor x factor cells (factor = 2^k);
// the last block of a row or column may be partial. Cells are row-major.
struct HeatLevel {
  int rows = 0, cols = 0, factor = 1;
  std::vector<float> values;
};

// Levels 0 (the matrix itself) .. k until both sides are at most min_side. NaNs are skipped by the
// max (a block of NaNs stays NaN).
std::vector<HeatLevel> build_pyramid(const float* values, int rows, int cols, int min_side = 256);

// The level to draw when one screen pixel covers cells_per_pixel cells: the coarsest whose
// factor is at most cells_per_pixel, so every pixel shows the maximum of the cells under it.
int choose_level(const std::vector<HeatLevel>& pyramid, double cells_per_pixel);

// kSigned: signed values (activations) on the blue-white-red diverging map, -m..m with m = max |v|.
enum class HeatScale { kLinear, kLog, kSinkClipped, kSigned };
const char* heat_scale_name(HeatScale s);  // "linear", "log", "sink-clipped", "signed"
bool parse_heat_scale(const std::string& s, HeatScale* out);

// Value -> t in [0, 1] for the colour map.
struct HeatRange {
  HeatScale scale = HeatScale::kLinear;
  double lo = 0, hi = 1;  // value range (log: lo > 0)
  double normalize(double v) const;
};
// linear: 0..max; log: max(min positive, max * 1e-4)..max; sink-clipped: 0..the largest value
// outside column 0 (a first-token sink saturates instead of washing out every other key);
// signed: -m..m, m = max |value|.
HeatRange heat_range(const float* values, int rows, int cols, HeatScale scale);

// Everything a heatmap needs before it is drawn: the pyramid and the range of each scale. Built
// off the UI thread for big patterns (the forward task), so a 4096 x 4096 result costs the frame
// that receives it nothing but a pointer swap.
struct PreparedHeatmap {
  std::vector<HeatLevel> levels;
  HeatRange ranges[4];  // indexed by HeatScale
};
std::shared_ptr<const PreparedHeatmap> prepare_heatmap(const float* values, int rows, int cols);

// RGBA texels (viridis; signed: diverging) of a level; NaN cells (masked, e.g. future keys) are dark grey.
void colorize(const HeatLevel& level, const HeatRange& range, std::vector<uint8_t>& rgba);

}  // namespace ms::views
