// The Attention window's heatmap and thumbnail-grid layouts, for headless screenshot checks
// (`--view attention`), and its grid mode (`gui --attention-grid`).
#pragma once

#include "views/heatmap_widget.h"

namespace ms::views {

class View;
// The layout of the attention heatmap drawn last frame by view (which must be the Attention view).
const HeatmapLayout* attention_layout(const View& view);

// The all-heads grid: one thumbnail per head of the selected layer (click: that head).
struct ThumbGridLayout {
  int n = 0, cols = 0;      // thumbnails drawn, per row
  float x = 0, y = 0;       // top-left of thumbnail 0's image
  float size = 0, pitch_x = 0, pitch_y = 0;  // image side; distance between neighbours
};
// Switches view (the Attention view) between one head's heatmap and the grid.
void set_attention_grid(View& view, bool on);
const ThumbGridLayout* attention_grid_layout(const View& view);

}  // namespace ms::views
