// Rectangle grids with labels and a colour bar, and line plots; see grid_plot.h.
#include "views/grid_plot.h"

#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ms::views {

namespace {
ImU32 im_color(const Rgb& c) { return IM_COL32(c.r, c.g, c.b, 255); }
const ImU32 kText = IM_COL32(220, 220, 220, 255), kDim = IM_COL32(160, 160, 160, 255);
}  // namespace

GridLayout draw_grid(const char* id, const std::vector<double>& values, int rows, int cols, const ColorScale& scale,
                     const GridSpec& spec, float max_w, float max_h) {
  GridLayout out;
  if (rows <= 0 || cols <= 0 || values.size() < static_cast<size_t>(rows) * cols) return out;
  ImGui::PushID(id);
  const float th = ImGui::GetTextLineHeight();
  float row_label_w = ImGui::CalcTextSize("0000").x;
  for (const std::string& s : spec.row_labels) row_label_w = std::max(row_label_w, ImGui::CalcTextSize(s.c_str()).x);
  row_label_w = std::min(row_label_w, 80.f) + th + 6;  // + the rotated-free axis title column
  const float title_h = spec.title.empty() ? 0 : th + 4;
  const float col_label_h = th + 2, axis_h = th + 2;
  const float bar_w = 12, bar_room = 70;
  float avail_w = max_w - row_label_w - bar_room, avail_h = max_h - title_h - col_label_h - axis_h;
  float cw = std::clamp(avail_w / cols, 2.f, 48.f), ch = std::clamp(avail_h / rows, 2.f, 48.f);
  ImVec2 p = ImGui::GetCursorScreenPos();
  ImDrawList* dl = ImGui::GetWindowDrawList();
  if (!spec.title.empty()) dl->AddText(p, kText, spec.title.c_str());
  const float gx = p.x + row_label_w, gy = p.y + title_h + col_label_h;
  char buf[64];
  // Column labels, every k-th when cells are narrow.
  float widest = ImGui::CalcTextSize("000").x;
  for (const std::string& s : spec.col_labels) widest = std::max(widest, ImGui::CalcTextSize(s.c_str()).x);
  int cstep = std::max(1, static_cast<int>(std::ceil((std::min(widest, 60.f) + 4) / cw)));
  for (int c = 0; c < cols; c += cstep) {
    std::string s = c < static_cast<int>(spec.col_labels.size()) ? spec.col_labels[c] : std::to_string(c);
    float w = ImGui::CalcTextSize(s.c_str()).x;
    dl->AddText(ImVec2(gx + (c + 0.5f) * cw - w / 2, gy - col_label_h), kDim, s.c_str());
  }
  int rstep = std::max(1, static_cast<int>(std::ceil((th + 1) / ch)));
  for (int r = 0; r < rows; r += rstep) {
    std::string s = r < static_cast<int>(spec.row_labels.size()) ? spec.row_labels[r] : std::to_string(r);
    float w = ImGui::CalcTextSize(s.c_str()).x;
    dl->AddText(ImVec2(gx - 4 - w, gy + (r + 0.5f) * ch - th / 2), kDim, s.c_str());
  }
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      double v = values[static_cast<size_t>(r) * cols + c];
      Rgb col = std::isnan(v) ? Rgb{90, 90, 90} : colormap_at(scale.map, scale.normalize(v));
      ImVec2 a(gx + c * cw, gy + r * ch);
      dl->AddRectFilled(a, ImVec2(a.x + cw - (cw >= 6 ? 1 : 0), a.y + ch - (ch >= 6 ? 1 : 0)), im_color(col));
    }
  // Axis titles: the row title at the top-left corner, the column title under the grid.
  if (!spec.row_title.empty()) dl->AddText(ImVec2(p.x, gy - col_label_h), kDim, (spec.row_title + " \\").c_str());
  if (!spec.col_title.empty())
    dl->AddText(ImVec2(gx + cols * cw / 2 - ImGui::CalcTextSize(spec.col_title.c_str()).x / 2, gy + rows * ch + 2), kDim,
                spec.col_title.c_str());
  // Colour bar: top = scale.hi, bottom = scale.lo.
  float bx = gx + cols * cw + 8, bh = std::max(rows * ch, 3 * th);
  const int steps = 48;
  for (int i = 0; i < steps; ++i) {
    Rgb c = colormap_at(scale.map, 1.0 - (i + 0.5) / steps);
    dl->AddRectFilled(ImVec2(bx, gy + bh * i / steps), ImVec2(bx + bar_w, gy + bh * (i + 1) / steps + 1), im_color(c));
  }
  std::snprintf(buf, sizeof buf, "%.3g", scale.hi);
  dl->AddText(ImVec2(bx + bar_w + 3, gy), kText, buf);
  std::snprintf(buf, sizeof buf, "%.3g", scale.lo);
  dl->AddText(ImVec2(bx + bar_w + 3, gy + bh - th), kText, buf);
  if (scale.map == Colormap::kDiverging) dl->AddText(ImVec2(bx + bar_w + 3, gy + bh / 2 - th / 2), kDim, "0");

  float total_w = row_label_w + cols * cw + bar_room, total_h = title_h + col_label_h + std::max(rows * ch, bh) + axis_h;
  ImGui::InvisibleButton("##grid", ImVec2(total_w, total_h));
  if (ImGui::IsItemHovered()) {
    ImVec2 m = ImGui::GetIO().MousePos;
    int c = static_cast<int>(std::floor((m.x - gx) / cw)), r = static_cast<int>(std::floor((m.y - gy) / ch));
    if (r >= 0 && r < rows && c >= 0 && c < cols) {
      auto label = [](const std::vector<std::string>& l, int i) {
        return i < static_cast<int>(l.size()) ? l[i] : std::to_string(i);
      };
      double v = values[static_cast<size_t>(r) * cols + c];
      ImGui::SetTooltip("%s %s, %s %s\n%s = %.4g", spec.row_title.empty() ? "row" : spec.row_title.c_str(),
                        label(spec.row_labels, r).c_str(), spec.col_title.empty() ? "column" : spec.col_title.c_str(),
                        label(spec.col_labels, c).c_str(), spec.value_title.c_str(), v);
    }
  }
  ImGui::PopID();
  out.x = gx, out.y = gy, out.cell_w = cw, out.cell_h = ch, out.rows = rows, out.cols = cols;
  return out;
}

void draw_curve(const char* id, const std::vector<double>& values, const std::string& x_title,
                const std::string& y_title, float width, float height) {
  if (values.empty()) return;
  std::vector<float> f(values.begin(), values.end());
  float lo = INFINITY, hi = -INFINITY;
  for (float v : f)
    if (!std::isnan(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (lo > hi) lo = hi = 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "max %.4g", hi);
  ImGui::TextDisabled("%s", buf);
  ImGui::PushID(id);
  ImGui::PlotLines("##curve", f.data(), static_cast<int>(f.size()), 0, y_title.c_str(), lo, hi > lo ? hi : lo + 1,
                   ImVec2(width, height));
  ImGui::PopID();
  std::snprintf(buf, sizeof buf, "min %.4g", lo);
  ImGui::TextDisabled("%s   %s: 0 .. %zu", buf, x_title.empty() ? "index" : x_title.c_str(), f.size() - 1);
}

}  // namespace ms::views
