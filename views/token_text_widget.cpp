// TokenTextWidget: greedy line layout (a line also ends after a newline token), ImGuiListClipper
// over lines, chips shaded from one row or column of the matrix; see token_text_widget.h.
#include "views/token_text_widget.h"

#include <imgui.h>

#include <algorithm>
#include <cmath>

namespace ms::views {

namespace {
constexpr float kPadX = 4, kPadY = 2, kGapX = 2, kGapY = 3;
constexpr Rgb kCold{52, 52, 58}, kHot{235, 100, 45};

bool ends_line(const std::string& s) { return s.find("\xe2\x86\xb5") != std::string::npos; }  // "↵"
}  // namespace

Rgb token_shade(double t) {
  t = std::isnan(t) ? 0.0 : std::clamp(t, 0.0, 1.0);
  auto mix = [t](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a + (b - a) * t)); };
  return {mix(kCold.r, kHot.r), mix(kCold.g, kHot.g), mix(kCold.b, kHot.b)};
}

void TokenTextWidget::set_tokens(std::vector<std::string> tokens) {
  m_tokens = std::move(tokens);
  m_text_w.clear();
  m_line_start.clear();
  m_layout_width = -1;
  if (m_pinned >= static_cast<int>(m_tokens.size())) m_pinned = -1;
  m_scroll_to_pinned = m_pinned >= 0;  // a new prompt: show the pinned chip again
}

void TokenTextWidget::set_pinned(int token) {
  if (token == m_pinned) return;
  m_pinned = token;
  m_scroll_to_pinned = token >= 0;
}

void TokenTextWidget::draw_legend(float width) const {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const float h = ImGui::GetTextLineHeight();
  ImGui::TextUnformatted("0");
  ImGui::SameLine();
  ImVec2 p = ImGui::GetCursorScreenPos();
  const Rgb a = token_shade(0), b = token_shade(1);  // token_shade is linear between these two
  const ImU32 ca = IM_COL32(a.r, a.g, a.b, 255), cb = IM_COL32(b.r, b.g, b.b, 255);
  dl->AddRectFilledMultiColor(ImVec2(p.x, p.y + 2), ImVec2(p.x + width, p.y + h - 2), ca, cb, cb, ca);
  ImGui::Dummy(ImVec2(width, h));
  ImGui::SameLine();
  if (m_absolute) ImGui::TextUnformatted("1");
  else if (m_focus >= 0) ImGui::Text("%.3g (row max)", m_max);
  else ImGui::TextUnformatted("row max");
}

void TokenTextWidget::set_matrix(std::shared_ptr<const std::vector<float>> values) { m_values = std::move(values); }

void TokenTextWidget::layout(float width) {
  const int n = static_cast<int>(m_tokens.size());
  if (static_cast<int>(m_text_w.size()) != n) {
    m_text_w.resize(n);
    for (int i = 0; i < n; ++i) m_text_w[i] = ImGui::CalcTextSize(m_tokens[i].c_str()).x;
  }
  m_layout_width = width;
  m_line_start.clear();
  m_x.assign(n, 0);
  float x = 0;
  bool break_next = true;
  for (int i = 0; i < n; ++i) {
    float w = m_text_w[i] + 2 * kPadX;
    if (break_next || (x > 0 && x + w > width)) {
      m_line_start.push_back(i);
      x = 0;
    }
    m_x[i] = x;
    x += w + kGapX;
    break_next = ends_line(m_tokens[i]);
  }
}

float TokenTextWidget::weight(int token) const {
  const int n = static_cast<int>(m_tokens.size());
  if (!m_values || m_focus < 0 || m_focus >= n || m_values->size() < static_cast<size_t>(n) * n) return NAN;
  return m_received ? (*m_values)[static_cast<size_t>(token) * n + m_focus]
                    : (*m_values)[static_cast<size_t>(m_focus) * n + token];
}

void TokenTextWidget::draw() {
  m_chips.clear();
  const int n = static_cast<int>(m_tokens.size());
  if (n == 0) {
    ImGui::TextDisabled("(no tokens)");
    return;
  }
  ImGui::BeginChild("##token_text", ImVec2(0, 0), false, ImGuiWindowFlags_AlwaysVerticalScrollbar);
  const float width = ImGui::GetContentRegionAvail().x;
  if (width != m_layout_width || m_line_start.empty()) layout(width);
  const float th = ImGui::GetTextLineHeight(), chip_h = th + 2 * kPadY, line_h = chip_h + kGapY;
  m_view_top = ImGui::GetWindowPos().y;
  m_view_bottom = m_view_top + ImGui::GetWindowHeight();
  m_scroll_y = ImGui::GetScrollY();
  if (m_scroll_to_pinned && m_pinned >= 0 && m_pinned < n) {
    // The pinned chip's line, centred when it is not wholly in view (applied at the next frame).
    const int line = static_cast<int>(std::upper_bound(m_line_start.begin(), m_line_start.end(), m_pinned) - m_line_start.begin()) - 1;
    const float y0 = line * line_h, y1 = y0 + chip_h, view_h = ImGui::GetWindowHeight();
    if (y0 < m_scroll_y || y1 > m_scroll_y + view_h) ImGui::SetScrollY(std::max(0.f, y0 - (view_h - chip_h) / 2));
    m_scroll_to_pinned = false;
  }

  // The focus (when the mouse decides, last frame's: a frame behind at most) and its row's maximum.
  int hovered = -1;
  if (m_forced_hover >= 0 && m_forced_hover < n) m_focus = m_forced_hover;
  else if (m_focus < 0 || m_focus >= n) m_focus = m_pinned < n ? m_pinned : -1;
  m_max = 0;
  for (int i = 0; i < n; ++i) {
    float v = weight(i);
    if (!std::isnan(v)) m_max = std::max<double>(m_max, v);
  }

  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  const bool window_hovered = ImGui::IsWindowHovered();
  ImGui::PushStyleVar(ImGuiStyleVar_ItemSpacing, ImVec2(0, 0));
  ImGuiListClipper clip;
  clip.Begin(n_lines(), line_h);
  while (clip.Step()) {
    for (int line = clip.DisplayStart; line < clip.DisplayEnd; ++line) {
      ImVec2 p = ImGui::GetCursorScreenPos();
      int end = line + 1 < n_lines() ? m_line_start[line + 1] : n;
      for (int i = m_line_start[line]; i < end; ++i) {
        float x = p.x + m_x[i], w = m_text_w[i] + 2 * kPadX;
        float v = weight(i);
        Rgb c = token_shade(m_absolute ? v : m_max > 0 ? v / m_max : 0.0);
        // Square corners: a rounded fill is an anti-aliased path of dozens of vertices, which made a
        // screenful of chips cost llvmpipe 2.4x an empty frame; a plain rectangle is 4 vertices.
        dl->AddRectFilled(ImVec2(x, p.y), ImVec2(x + w, p.y + chip_h), IM_COL32(c.r, c.g, c.b, 255));
        dl->AddText(ImVec2(x + kPadX, p.y + kPadY), IM_COL32(240, 240, 240, 255), m_tokens[i].c_str());
        if (i == m_focus) dl->AddRect(ImVec2(x - 1, p.y - 1), ImVec2(x + w + 1, p.y + chip_h + 1), IM_COL32(255, 225, 90, 255), 0, 0, 2);
        else if (i == m_pinned) dl->AddRect(ImVec2(x - 1, p.y - 1), ImVec2(x + w + 1, p.y + chip_h + 1), IM_COL32(160, 160, 160, 255));
        if (window_hovered && mouse.x >= x && mouse.x < x + w && mouse.y >= p.y && mouse.y < p.y + chip_h) hovered = i;
        m_chips.push_back({i, x, p.y, w, chip_h, v});
      }
      ImGui::Dummy(ImVec2(width, line_h));
    }
  }
  clip.End();
  ImGui::PopStyleVar();
  if (hovered >= 0) {
    ImGui::BeginTooltip();
    ImGui::Text("token %d: %s", hovered, m_tokens[hovered].c_str());
    ImGui::TextDisabled(hovered == m_pinned ? "click: unpin" : "click: pin");
    ImGui::EndTooltip();
    if (ImGui::IsMouseClicked(ImGuiMouseButton_Left)) m_pinned = hovered == m_pinned ? -1 : hovered;
  }
  ImGui::EndChild();
  // Next frame's focus: the token under the mouse, else the pinned one.
  if (m_forced_hover < 0) m_focus = hovered >= 0 ? hovered : m_pinned;
}

}  // namespace ms::views
