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
  // sink-clipped: the largest value outside column 0, and whether the floor raised hi above it.
  double max_rest = 0;
  bool floored = false;
  double normalize(double v) const;
};
// The sink-clipped scale's default floor. Without one, a pure sink head (everything on column 0,
// the rest ~1e-6) is stretched until its crumbs fill the whole map and look like spread attention.
constexpr double kSinkFloor = 0.05;
// linear: 0..max; log: max(min positive, max * 1e-4)..max; sink-clipped: 0..max(the largest value
// outside column 0, sink_floor), at most the largest value (a first-token sink saturates instead of
// washing out every other key, and weights below the floor stay dark); signed: -m..m, m = max |value|.
HeatRange heat_range(const float* values, int rows, int cols, HeatScale scale, double sink_floor = kSinkFloor);
// The sink-clipped range from the two maxima (all cells, cells outside column 0) and a floor.
HeatRange sink_clipped_range(double max_all, double max_rest, double sink_floor);

// Everything a heatmap needs before it is drawn: the pyramid and the range of each scale. Built
// off the UI thread for big patterns (the forward task), so a 4096 x 4096 result costs the frame
// that receives it nothing but a pointer swap.
struct PreparedHeatmap {
  std::vector<HeatLevel> levels;
  HeatRange ranges[4];  // indexed by HeatScale (sink-clipped with kSinkFloor)
  double max_all = 0, max_rest = 0;  // for sink-clipped ranges with another floor
};
std::shared_ptr<const PreparedHeatmap> prepare_heatmap(const float* values, int rows, int cols);

// RGBA texels (viridis; signed: diverging) of a level; NaN cells (masked, e.g. future keys) are dark grey.
void colorize(const HeatLevel& level, const HeatRange& range, std::vector<uint8_t>& rgba);

}  // namespace ms::views
