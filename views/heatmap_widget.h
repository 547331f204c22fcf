// HeatmapWidget: a large matrix drawn as OpenGL textures with level of detail (max-pooled levels
// when zoomed out), token labels on both axes, hover tooltip, wheel zoom, drag pan and a colour bar.
// A 4096 x 4096 pattern costs one textured quad per frame, whatever the zoom.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "views/heatmap_data.h"

struct ImVec2;

namespace ms::views {

// Where the matrix was drawn last frame, in window pixels (tests read it back with screenshots).
struct HeatmapLayout {
  float x = 0, y = 0;       // top-left of cell (0, 0)
  float cell_w = 0, cell_h = 0;
  int rows = 0, cols = 0;
  int key_labels = 0;       // rotated key-axis labels drawn (every k-th key when cells are small)
  float key_band = 0;       // their band's height above the plot
};

class HeatmapWidget {
 public:
  HeatmapWidget();
  ~HeatmapWidget();
  HeatmapWidget(const HeatmapWidget&) = delete;
  HeatmapWidget& operator=(const HeatmapWidget&) = delete;

  // New data (row-major rows x cols, NaN = no value). Labels may be empty (indices are shown).
  // prepared: the pyramid and ranges when already built elsewhere (else built here).
  void set_matrix(std::shared_ptr<const std::vector<float>> values, int rows, int cols,
                  std::vector<std::string> row_labels, std::vector<std::string> col_labels,
                  std::shared_ptr<const PreparedHeatmap> prepared = nullptr);
  void set_scale(HeatScale s);
  HeatScale scale() const { return m_scale; }
  // The sink-clipped scale's floor (heatmap_data.h kSinkFloor by default).
  void set_sink_floor(double floor);
  const HeatRange& range() const { return m_range; }
  void set_titles(std::string row_title, std::string col_title, std::string value_title);
  void fit() { m_fit = true; }
  // Shows cells from (origin_row, origin_col) at zoom pixels per cell (go-to-cell, benchmarks).
  void set_view(double zoom, double origin_row, double origin_col) {
    m_fit = false;
    m_zoom = zoom;
    m_origin_y = origin_row;
    m_origin_x = origin_col;
  }
  bool empty() const { return m_rows == 0; }

  // Draws into the remaining content region.
  void draw();
  const HeatmapLayout& layout() const { return m_layout; }
  // The cell clicked (pressed and released without dragging) in the last draw(); false if none.
  bool clicked(int* row, int* col) const {
    if (m_clicked_row < 0) return false;
    *row = m_clicked_row, *col = m_clicked_col;
    return true;
  }
  int level_drawn() const { return m_level_drawn; }

 private:
  void ensure_texture(int level);
  void release_textures();

  std::shared_ptr<const std::vector<float>> m_values;
  int m_rows = 0, m_cols = 0;
  std::vector<std::string> m_row_labels, m_col_labels;
  std::string m_row_title = "query", m_col_title = "key", m_value_title = "weight";
  std::shared_ptr<const PreparedHeatmap> m_prepared;
  std::vector<HeatLevel> m_empty;
  const std::vector<HeatLevel>& pyramid() const { return m_prepared ? m_prepared->levels : m_empty; }
  std::vector<unsigned> m_textures;  // per level, 0 = not uploaded for the current scale
  HeatScale m_scale = HeatScale::kLinear;
  HeatRange m_range;
  double m_sink_floor = kSinkFloor;
  void update_range();
  bool m_fit = true;
  double m_zoom = 1;              // pixels per cell
  double m_origin_x = 0, m_origin_y = 0;  // cell coordinates at the top-left of the plot
  HeatmapLayout m_layout;
  int m_level_drawn = 0;
  int m_clicked_row = -1, m_clicked_col = -1;
  float m_key_band = -1;  // height of the rotated key labels above the plot (-1: to measure)
};

// One heatmap level as an RGBA OpenGL texture (NEAREST filtering): its id, to draw with
// ImDrawList::AddImage and free with delete_heat_texture (which zeroes the id). UI thread only.
unsigned upload_heat_texture(const HeatLevel& level, const HeatRange& range);
void delete_heat_texture(unsigned* texture);

}  // namespace ms::views
