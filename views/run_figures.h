// The data behind the Runs window's figures, without ImGui: a stored tensor as a line (1-D) or a
// grid (2-D) with its axis names and labels from the tensor's meta, and the A - B grid of two
// runs' per-head scores. Testable headless; the drawing is grid_plot.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/base/colormap.h"
#include "storage/database.h"

namespace ms::views {

// A grid's largest side in cells; longer sides are block means (row_step, col_step > 1).
constexpr int kMaxGridSide = 96;

struct TensorFigure {
  int rank = 0;  // 1: a curve (cols values), 2: a grid (rows x cols)
  int rows = 1, cols = 0;
  int row_step = 1, col_step = 1;  // > 1: each cell is the mean of a block of the tensor
  std::vector<double> values;      // row-major
  std::string row_title, col_title, value_title;
  std::vector<std::string> row_labels, col_labels;  // empty: indices
};
// nullopt when the tensor is neither 1-D nor 2-D after dropping size-1 dimensions, or is bool;
// *why then says so. Throws nothing: a read error comes back in *why.
std::optional<TensorFigure> tensor_figure(Database& db, int64_t run_id, const TensorInfo& t, std::string* why);

// A - B head by head (NaN where either is NaN); nullopt when the shapes differ.
std::optional<HeadScores> difference_grid(const HeadScores& a, const HeadScores& b);
// The diverging map on -m..m, m = max |value| (white is zero whatever the data's range).
ColorScale symmetric_scale(const std::vector<double>& values);
// One scale for A and B side by side: 0..1 when both are in [0, 1] and absolute, else their joint
// min..max (diverging and symmetric when signed).
ColorScale joint_scale(const HeadScores& a, const HeadScores& b, bool absolute);

}  // namespace ms::views
