// Attention window: one head's pattern as a heatmap texture (level of detail, rotated token labels,
// hover, zoom/pan, linear / log / sink-clipped colour scales, colour bar) with layer and head
// pickers, or a grid of every head of the layer as thumbnails (click one to open it).
#include "views/attention_view.h"

#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class AttentionView : public View {
 public:
  explicit AttentionView(Workbench& wb) : View(wb, "Attention", "attention") {}
  ~AttentionView() override { release_thumbs(); }
  const HeatmapLayout& layout() const { return m_heat.layout(); }
  const ThumbGridLayout& grid_layout() const { return m_grid_layout; }
  bool m_grid = false;

 protected:
  void draw_content() override {
    if (!have_forward()) return;
    const auto& f = m_wb.forward();
    int layer = m_wb.layer, head = m_wb.head;
    ImGui::SetNextItemWidth(120);
    bool changed = ImGui::SliderInt("layer", &layer, 0, static_cast<int>(f->n_layers) - 1);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(120);
    changed |= ImGui::SliderInt("head", &head, 0, static_cast<int>(f->n_heads) - 1);
    if (changed) m_wb.select_head(layer, head);
    ImGui::SameLine();
    int s = static_cast<int>(m_wb.scale);
    ImGui::SetNextItemWidth(130);
    if (ImGui::Combo("scale", &s, "linear\0log\0sink-clipped\0")) m_wb.scale = static_cast<HeatScale>(s);
    if (m_wb.scale == HeatScale::kSinkClipped) {
      // The clip is max(largest weight outside column 0, floor): a pure sink head's crumbs
      // (~1e-6) stay dark instead of being stretched over the whole colour map.
      ImGui::SameLine();
      ImGui::SetNextItemWidth(90);
      ImGui::DragFloat("floor", &m_sink_floor, 0.005f, 0.f, 1.f, "%.3f");
      if (ImGui::IsItemHovered())
        ImGui::SetTooltip("sink-clipped: the top of the scale is max(the largest weight outside column 0, this floor)");
    }
    ImGui::SameLine();
    ImGui::Checkbox("all heads", &m_grid);
    if (m_grid) {
      draw_grid(*f);
      return;
    }
    ImGui::SameLine();
    if (ImGui::Button("Fit")) m_heat.fit();
    m_heat.set_scale(m_wb.scale);
    m_heat.set_sink_floor(m_sink_floor);

    auto pat = f->pattern(m_wb.layer, m_wb.head);
    if (pat != m_shown || m_gen != m_wb.forward_generation()) {
      if (pat) {
        m_heat.set_matrix(pat, static_cast<int>(f->n_pos), static_cast<int>(f->n_pos), f->tokens, f->tokens,
                          f->prepared_heatmap(m_wb.layer, m_wb.head));
        m_shown = pat;
      }
      m_gen = m_wb.forward_generation();
    }
    if (!pat) {
      ImGui::TextDisabled("computing layer %d head %d...", m_wb.layer, m_wb.head);
      return;
    }
    ImGui::TextDisabled("L%d H%d  %lld x %lld  wheel: zoom, drag: pan, double-click: fit", m_wb.layer,
                        m_wb.head, static_cast<long long>(f->n_pos), static_cast<long long>(f->n_pos));
    m_heat.draw();
  }

 private:
  void release_thumbs() {
    for (unsigned& t : m_thumb_tex) delete_heat_texture(&t);
  }

  // Every head of the layer as a thumbnail (ForwardResult::thumbs, max-pooled for long prompts),
  // each on its own scale, in as many columns as make them largest.
  void draw_grid(const ForwardResult& f) {
    const int n = static_cast<int>(f.n_heads);
    m_grid_layout = {};
    if (m_thumb_gen != m_wb.forward_generation() || m_thumb_layer != m_wb.layer || m_thumb_scale != m_wb.scale) {
      release_thumbs();
      m_thumb_tex.assign(n, 0);
      m_thumb_gen = m_wb.forward_generation(), m_thumb_layer = m_wb.layer, m_thumb_scale = m_wb.scale;
    }
    if (!f.thumb(m_wb.layer, 0)) {
      ImGui::TextDisabled("computing layer %d...", m_wb.layer);
      if (!m_wb.forward_pending()) m_wb.select_head(m_wb.layer, m_wb.head);
      return;
    }
    const int factor = f.thumb(m_wb.layer, 0)->factor;
    ImGui::TextDisabled("layer %d, %d heads, each on its own scale%s  click: open that head", m_wb.layer, n,
                        factor > 1 ? "  (long prompt: tiles show the max of their cells)" : "");
    ImVec2 avail = ImGui::GetContentRegionAvail(), p = ImGui::GetCursorScreenPos();
    const float label_h = ImGui::GetTextLineHeight() + 2, gap = 8;
    int best_cols = 1;
    float best = 0;
    for (int c = 1; c <= n; ++c) {
      int rows = (n + c - 1) / c;
      float side = std::min((avail.x - gap * c) / c, (avail.y - rows * (label_h + gap)) / rows);
      if (side > best) best = side, best_cols = c;
    }
    const float side = std::floor(std::max(best, 16.f));
    m_grid_layout = {n, best_cols, p.x, p.y + label_h, side, side + gap, side + gap + label_h};
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    int hovered = -1;
    for (int h = 0; h < n; ++h) {
      auto t = f.thumb(m_wb.layer, h);
      if (!t) continue;
      if (!m_thumb_tex[h]) m_thumb_tex[h] = upload_heat_texture(*t, heat_range(t->values.data(), t->rows, t->cols, m_wb.scale));
      ImVec2 a(p.x + (h % best_cols) * m_grid_layout.pitch_x, p.y + (h / best_cols) * m_grid_layout.pitch_y);
      ImVec2 b(a.x + side, a.y + label_h + side);
      char buf[32];
      std::snprintf(buf, sizeof buf, "H%d", h);
      dl->AddText(a, h == m_wb.head ? IM_COL32(255, 120, 100, 255) : IM_COL32(210, 210, 210, 255), buf);
      dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(m_thumb_tex[h])), ImVec2(a.x, a.y + label_h), b);
      if (h == m_wb.head) dl->AddRect(ImVec2(a.x - 2, a.y + label_h - 2), ImVec2(b.x + 2, b.y + 2), IM_COL32(255, 80, 80, 255), 0, 0, 2);
      if (ImGui::IsWindowHovered() && mouse.x >= a.x && mouse.x < b.x && mouse.y >= a.y && mouse.y < b.y) hovered = h;
    }
    int rows = (n + best_cols - 1) / best_cols;
    ImGui::Dummy(ImVec2(best_cols * m_grid_layout.pitch_x, rows * m_grid_layout.pitch_y));
    if (hovered >= 0) {
      ImGui::SetTooltip("L%d H%d  alpha0 %.3f\nclick: open its pattern", m_wb.layer, hovered,
                        f.alpha0[static_cast<size_t>(m_wb.layer * f.n_heads + hovered)]);
      if (ImGui::IsMouseClicked(ImGuiMouseButton_Left)) {
        m_wb.select_head(m_wb.layer, hovered);
        m_grid = false;
      }
    }
  }

  HeatmapWidget m_heat;
  float m_sink_floor = static_cast<float>(kSinkFloor);
  std::shared_ptr<const std::vector<float>> m_shown;
  int64_t m_gen = -1;
  std::vector<unsigned> m_thumb_tex;  // per head of m_thumb_layer, 0 = not uploaded
  int64_t m_thumb_gen = -1;
  int m_thumb_layer = -1;
  HeatScale m_thumb_scale = HeatScale::kLinear;
  ThumbGridLayout m_grid_layout;
};
}  // namespace

std::unique_ptr<View> make_attention_view(Workbench& wb) { return std::make_unique<AttentionView>(wb); }

const HeatmapLayout* attention_layout(const View& view) {
  auto* a = dynamic_cast<const AttentionView*>(&view);
  return a ? &a->layout() : nullptr;
}

void set_attention_grid(View& view, bool on) {
  if (auto* a = dynamic_cast<AttentionView*>(&view)) a->m_grid = on;
}

const ThumbGridLayout* attention_grid_layout(const View& view) {
  auto* a = dynamic_cast<const AttentionView*>(&view);
  return a && a->m_grid ? &a->grid_layout() : nullptr;
}

}  // namespace ms::views
