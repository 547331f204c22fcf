// Small grids (a run's layer x head scores, a retrieval accuracy grid, a stored 2-D tensor) drawn
// as rectangles with axis labels and a colour bar, and a 1-D tensor as a line plot with its range.
// For matrices of a few thousand cells; big patterns use HeatmapWidget's textures.
#pragma once

#include <string>
#include <vector>

#include "core/base/colormap.h"

namespace ms::views {

// Where a grid was drawn last frame, in window pixels (headless screenshot checks read it).
struct GridLayout {
  float x = 0, y = 0;  // top-left of cell (0, 0)
  float cell_w = 0, cell_h = 0;
  int rows = 0, cols = 0;
};

struct GridSpec {
  std::string title;                  // above the grid
  std::string row_title, col_title;   // axis names ("layer", "head")
  std::vector<std::string> row_labels, col_labels;  // empty: indices
  std::string value_title = "value";
};

// Draws values (row-major rows x cols, NaN = no value: grey) coloured by scale, at most
// max_w x max_h pixels including labels and the colour bar (labelled scale.lo .. scale.hi), with a
// hover tooltip. Returns where the cells went.
GridLayout draw_grid(const char* id, const std::vector<double>& values, int rows, int cols, const ColorScale& scale,
                     const GridSpec& spec, float max_w, float max_h);

// A 1-D series as a line plot with its min and max written beside it and the x range below.
void draw_curve(const char* id, const std::vector<double>& values, const std::string& x_title,
                const std::string& y_title, float width, float height);

}  // namespace ms::views
