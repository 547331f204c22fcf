// HeatmapWidget: textures per pyramid level, uploaded lazily, and the ImGui drawing around them.
#include "views/heatmap_widget.h"

#include <GL/gl.h>
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/base/colormap.h"

namespace ms::views {

namespace {
constexpr float kLeftMargin = 96, kBarWidth = 18, kBarGap = 10, kBarLabels = 64;
constexpr float kMaxKeyBand = 72;  // the most height the rotated key labels take above the plot

// The heatmap is opaque: drawn without blending, a software rasteriser (llvmpipe) skips reading
// the framebuffer back for every pixel of the quad. ResetRenderState turns blending on again.
void disable_blend(const ImDrawList*, const ImDrawCmd*) { glDisable(GL_BLEND); }

ImU32 im_color(const Rgb& c) { return IM_COL32(c.r, c.g, c.b, 255); }

std::string clip_label(const std::string& s, float width) {
  std::string out = s;
  while (!out.empty() && ImGui::CalcTextSize(out.c_str()).x > width) out.pop_back();
  // Never half a UTF-8 symbol (the whitespace marks are two or three bytes).
  size_t lead = out.size();
  while (lead > 0 && (static_cast<unsigned char>(out[lead - 1]) & 0xC0) == 0x80) --lead;
  if (lead > 0) {
    unsigned char c = static_cast<unsigned char>(out[lead - 1]);
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (out.size() - (lead - 1) < len) out.resize(lead - 1);
  }
  return out;
}

// An axis label: the token alone when every cell has one, else "index token" (every k-th cell).
std::string axis_label(const std::vector<std::string>& labels, int i, int step) {
  if (i >= static_cast<int>(labels.size())) return std::to_string(i);
  return step == 1 ? labels[i] : std::to_string(i) + " " + labels[i];
}

// Text reading upwards from (x, bottom), its glyphs' tops facing left: ImGui has no rotated text,
// so the text is laid out horizontally at the clip rectangle's corner (where no glyph is culled)
// and its vertices are then turned 90 degrees and moved into place.
void add_text_up(ImDrawList* dl, ImVec2 corner, float x, float bottom, ImU32 col, const std::string& s) {
  int v0 = dl->VtxBuffer.Size;
  dl->AddText(corner, col, s.c_str());
  for (int i = v0; i < dl->VtxBuffer.Size; ++i) {
    ImVec2& p = dl->VtxBuffer[i].pos;
    float dx = p.x - corner.x, dy = p.y - corner.y;
    p = ImVec2(x + dy, bottom - dx);
  }
}
}  // namespace

unsigned upload_heat_texture(const HeatLevel& level, const HeatRange& range) {
  std::vector<uint8_t> rgba;
  colorize(level, range, rgba);
  GLuint id = 0;
  glGenTextures(1, &id);
  glBindTexture(GL_TEXTURE_2D, id);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
  glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
  glPixelStorei(GL_UNPACK_ROW_LENGTH, 0);
  glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, level.cols, level.rows, 0, GL_RGBA, GL_UNSIGNED_BYTE, rgba.data());
  return id;
}

void delete_heat_texture(unsigned* texture) {
  if (!*texture) return;
  GLuint id = *texture;
  glDeleteTextures(1, &id);
  *texture = 0;
}

HeatmapWidget::HeatmapWidget() = default;
HeatmapWidget::~HeatmapWidget() { release_textures(); }

void HeatmapWidget::release_textures() {
  for (unsigned& t : m_textures) delete_heat_texture(&t);
}

void HeatmapWidget::set_matrix(std::shared_ptr<const std::vector<float>> values, int rows, int cols,
                               std::vector<std::string> row_labels, std::vector<std::string> col_labels,
                               std::shared_ptr<const PreparedHeatmap> prepared) {
  release_textures();
  bool same_shape = rows == m_rows && cols == m_cols;
  m_values = std::move(values);
  m_rows = rows;
  m_cols = cols;
  m_row_labels = std::move(row_labels);
  m_col_labels = std::move(col_labels);
  m_prepared = std::move(prepared);
  m_key_band = -1;
  if (!m_prepared && m_values && rows > 0 && cols > 0) m_prepared = prepare_heatmap(m_values->data(), rows, cols);
  update_range();
  m_textures.assign(pyramid().size(), 0);
  if (!same_shape) m_fit = true;
}

void HeatmapWidget::set_scale(HeatScale s) {
  if (s == m_scale) return;
  m_scale = s;
  release_textures();
  update_range();
}

void HeatmapWidget::set_sink_floor(double floor) {
  if (floor == m_sink_floor) return;
  m_sink_floor = floor;
  if (m_scale != HeatScale::kSinkClipped) return;
  release_textures();
  update_range();
}

void HeatmapWidget::update_range() {
  if (!m_prepared) return;
  m_range = m_scale == HeatScale::kSinkClipped
                ? sink_clipped_range(m_prepared->max_all, m_prepared->max_rest, m_sink_floor)
                : m_prepared->ranges[static_cast<int>(m_scale)];
}

void HeatmapWidget::set_titles(std::string row_title, std::string col_title, std::string value_title) {
  m_row_title = std::move(row_title);
  m_col_title = std::move(col_title);
  m_value_title = std::move(value_title);
}

void HeatmapWidget::ensure_texture(int level) {
  if (!m_textures[level]) m_textures[level] = upload_heat_texture(pyramid()[level], m_range);
}

void HeatmapWidget::draw() {
  ImVec2 avail = ImGui::GetContentRegionAvail();
  ImVec2 p0 = ImGui::GetCursorScreenPos();
  if (m_rows == 0 || avail.x < 200 || avail.y < 80) {
    ImGui::TextDisabled("(no data)");
    return;
  }
  // The key labels stand rotated above the plot: as tall as the longest label (measured once).
  if (m_key_band < 0) {
    float longest = ImGui::CalcTextSize("0000 ").x;
    for (const std::string& l : m_col_labels) longest = std::max(longest, ImGui::CalcTextSize(l.c_str()).x);
    m_key_band = std::min(kMaxKeyBand, longest + ImGui::CalcTextSize("0000 ").x + 6);
  }
  const float plot_x = p0.x + kLeftMargin, plot_y = p0.y + m_key_band;
  const float plot_w = avail.x - kLeftMargin - kBarGap - kBarWidth - kBarLabels;
  const float plot_h = avail.y - m_key_band - 4;
  if (m_fit) {
    m_zoom = std::min(plot_w / m_cols, plot_h / m_rows);
    m_origin_x = m_origin_y = 0;
    m_fit = false;
  }
  ImDrawList* dl = ImGui::GetWindowDrawList();
  ImGuiIO& io = ImGui::GetIO();

  // Input: the plot is one invisible button; wheel zooms around the cursor, drag pans.
  ImGui::SetCursorScreenPos(ImVec2(plot_x, plot_y));
  ImGui::InvisibleButton("##heatmap", ImVec2(plot_w, plot_h));
  bool hovered = ImGui::IsItemHovered();
  if (hovered && io.MouseWheel != 0) {
    double mx = m_origin_x + (io.MousePos.x - plot_x) / m_zoom;
    double my = m_origin_y + (io.MousePos.y - plot_y) / m_zoom;
    double fit_zoom = std::min(plot_w / m_cols, plot_h / m_rows);
    m_zoom = std::clamp(m_zoom * std::pow(1.25, io.MouseWheel), fit_zoom * 0.5, 200.0);
    m_origin_x = mx - (io.MousePos.x - plot_x) / m_zoom;
    m_origin_y = my - (io.MousePos.y - plot_y) / m_zoom;
  }
  if (ImGui::IsItemActive() && ImGui::IsMouseDragging(ImGuiMouseButton_Left)) {
    m_origin_x -= io.MouseDelta.x / m_zoom;
    m_origin_y -= io.MouseDelta.y / m_zoom;
  }
  if (hovered && ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) m_fit = true;
  m_clicked_row = m_clicked_col = -1;
  if (hovered && ImGui::IsMouseReleased(ImGuiMouseButton_Left)) {
    ImVec2 d = ImGui::GetMouseDragDelta(ImGuiMouseButton_Left, 0.0f);
    int c = int(std::floor(m_origin_x + (io.MousePos.x - plot_x) / m_zoom));
    int r = int(std::floor(m_origin_y + (io.MousePos.y - plot_y) / m_zoom));
    if (d.x * d.x + d.y * d.y < 9 && r >= 0 && r < m_rows && c >= 0 && c < m_cols) m_clicked_row = r, m_clicked_col = c;
  }
  m_origin_x = std::clamp(m_origin_x, -0.5 * m_cols, m_cols * 1.0);
  m_origin_y = std::clamp(m_origin_y, -0.5 * m_rows, m_rows * 1.0);

  // The visible cells, drawn from the level whose pooled cells are not finer than a pixel.
  double c0 = std::max(0.0, m_origin_x), r0 = std::max(0.0, m_origin_y);
  double c1 = std::min<double>(m_cols, m_origin_x + plot_w / m_zoom);
  double r1 = std::min<double>(m_rows, m_origin_y + plot_h / m_zoom);
  dl->PushClipRect(ImVec2(plot_x, plot_y), ImVec2(plot_x + plot_w, plot_y + plot_h), true);
  // No background fill under the plot: on a software rasteriser (llvmpipe) every full-area layer
  // costs as much as the texture itself.
  if (c1 > c0 && r1 > r0) {
    m_level_drawn = choose_level(pyramid(), 1.0 / m_zoom);
    ensure_texture(m_level_drawn);
    const HeatLevel& lv = pyramid()[m_level_drawn];
    double tw = double(lv.cols) * lv.factor, th = double(lv.rows) * lv.factor;  // cells the texture spans
    ImVec2 a(float(plot_x + (c0 - m_origin_x) * m_zoom), float(plot_y + (r0 - m_origin_y) * m_zoom));
    ImVec2 b(float(plot_x + (c1 - m_origin_x) * m_zoom), float(plot_y + (r1 - m_origin_y) * m_zoom));
    dl->AddCallback(disable_blend, nullptr);
    dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(m_textures[m_level_drawn])), a, b,
                 ImVec2(float(c0 / tw), float(r0 / th)), ImVec2(float(c1 / tw), float(r1 / th)));
    dl->AddCallback(ImDrawCallback_ResetRenderState, nullptr);
  }
  dl->PopClipRect();
  m_layout = {float(plot_x - m_origin_x * m_zoom), float(plot_y - m_origin_y * m_zoom), float(m_zoom),
              float(m_zoom), m_rows, m_cols};

  // Axis labels: every cell's token when there is room, else every k-th cell's "index token"
  // (never none). Key labels are rotated, so a column needs only a line's height of width.
  float th = ImGui::GetTextLineHeight();
  int step = std::max(1, int(std::ceil((th + 2) / m_zoom)));
  // A label may stand out by half a line past the plot's first row or column (the corner above the
  // row labels and left of the key labels is empty): token 0, often a sink, keeps its label.
  dl->PushClipRect(ImVec2(p0.x, plot_y - th / 2), ImVec2(plot_x, plot_y + plot_h), true);
  for (int r = int(r0) / step * step; r < r1; r += step) {
    std::string s = clip_label(axis_label(m_row_labels, r, step), kLeftMargin - 6);
    float y = float(plot_y + (r + 0.5 - m_origin_y) * m_zoom - th / 2);
    if (y < plot_y - th / 2 - 1) continue;  // would be cut by the top edge
    dl->AddText(ImVec2(plot_x - 4 - ImGui::CalcTextSize(s.c_str()).x, y), IM_COL32(220, 220, 220, 255), s.c_str());
  }
  dl->PopClipRect();
  const ImVec2 band_min(plot_x - th / 2, p0.y), band_max(plot_x + plot_w, plot_y - 2);
  dl->PushClipRect(band_min, band_max, true);
  m_layout.key_band = m_key_band;
  for (int c = int(c0) / step * step; c < c1; c += step) {
    std::string s = clip_label(axis_label(m_col_labels, c, step), band_max.y - band_min.y - 2);
    float x = float(plot_x + (c + 0.5 - m_origin_x) * m_zoom - th / 2);
    if (x < band_min.x - 1) continue;  // would be cut by the left edge
    add_text_up(dl, band_min, x, band_max.y - 1, IM_COL32(220, 220, 220, 255), s);
    ++m_layout.key_labels;
  }
  dl->PopClipRect();

  // Colour bar with its range.
  // Beside the matrix when it ends before the plot area does.
  float matrix_right = float(plot_x + (m_cols - m_origin_x) * m_zoom);
  float bx = std::clamp(matrix_right, plot_x, plot_x + plot_w) + kBarGap, by = plot_y, bh = std::min(plot_h, 320.f);
  const int steps = 64;
  for (int i = 0; i < steps; ++i) {
    double t = 1.0 - (i + 0.5) / steps;
    dl->AddRectFilled(ImVec2(bx, by + bh * i / steps), ImVec2(bx + kBarWidth, by + bh * (i + 1) / steps + 1),
                      im_color(colormap_at(m_scale == HeatScale::kSigned ? Colormap::kDiverging : Colormap::kViridis, t)));
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, m_scale == HeatScale::kSinkClipped ? ">=%.3g" : "%.3g", m_range.hi);
  dl->AddText(ImVec2(bx + kBarWidth + 4, by), IM_COL32(220, 220, 220, 255), buf);
  std::snprintf(buf, sizeof buf, m_scale == HeatScale::kLog ? "<=%.2g" : "%.3g", m_range.lo);
  dl->AddText(ImVec2(bx + kBarWidth + 4, by + bh - th), IM_COL32(220, 220, 220, 255), buf);
  dl->AddText(ImVec2(bx, by + bh + 4), IM_COL32(170, 170, 170, 255), heat_scale_name(m_scale));
  if (m_scale == HeatScale::kSinkClipped) {  // what the top of the bar is: the rest's max or the floor
    std::snprintf(buf, sizeof buf, "rest max %.2g", m_range.max_rest);
    dl->AddText(ImVec2(bx, by + bh + 4 + th), IM_COL32(170, 170, 170, 255), buf);
    std::snprintf(buf, sizeof buf, m_range.floored ? "top: floor %.3g" : "floor %.3g", m_sink_floor);
    dl->AddText(ImVec2(bx, by + bh + 4 + 2 * th), m_range.floored ? IM_COL32(255, 200, 90, 255) : IM_COL32(170, 170, 170, 255), buf);
  }

  // Hover: the cell under the cursor.
  if (hovered) {
    int c = int(std::floor(m_origin_x + (io.MousePos.x - plot_x) / m_zoom));
    int r = int(std::floor(m_origin_y + (io.MousePos.y - plot_y) / m_zoom));
    if (r >= 0 && r < m_rows && c >= 0 && c < m_cols) {
      float v = (*m_values)[static_cast<size_t>(r) * m_cols + c];
      ImGui::BeginTooltip();
      ImGui::Text("%s %d: %s", m_row_title.c_str(), r, r < int(m_row_labels.size()) ? m_row_labels[r].c_str() : "");
      ImGui::Text("%s %d: %s", m_col_title.c_str(), c, c < int(m_col_labels.size()) ? m_col_labels[c].c_str() : "");
      if (std::isnan(v)) ImGui::Text("%s: (masked)", m_value_title.c_str());
      else ImGui::Text("%s: %.4f", m_value_title.c_str(), v);
      if (m_level_drawn > 0) ImGui::TextDisabled("zoomed out: tiles show the max of %dx%d cells", pyramid()[m_level_drawn].factor, pyramid()[m_level_drawn].factor);
      ImGui::EndTooltip();
    }
  }
  // Claim exactly the region used, so the window never grows a scrollbar.
  ImGui::SetCursorScreenPos(ImVec2(p0.x, p0.y + avail.y - 1));
  ImGui::Dummy(ImVec2(1, 1));
}

}  // namespace ms::views
