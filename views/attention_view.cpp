// Attention window: one head's pattern as a heatmap texture (level of detail, token labels, hover,
// zoom/pan, linear / log / sink-clipped colour scales, colour bar) with layer and head pickers.
#include "views/attention_view.h"

#include <imgui.h>

#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class AttentionView : public View {
 public:
  explicit AttentionView(Workbench& wb) : View(wb, "Attention", "attention") {}
  const HeatmapLayout& layout() const { return m_heat.layout(); }

 protected:
  void default_rect(float* x, float* y, float* w, float* h) const override {
    *x = 0.25f, *y = 0.0f, *w = 0.5f, *h = 0.62f;
  }

  void draw_content() override {
    const auto& f = m_wb.forward();
    if (!f) {
      ImGui::TextDisabled(m_wb.model() ? "waiting for the forward pass..." : "open a model first");
      return;
    }
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
  HeatmapWidget m_heat;
  float m_sink_floor = static_cast<float>(kSinkFloor);
  std::shared_ptr<const std::vector<float>> m_shown;
  int64_t m_gen = -1;
};
}  // namespace

std::unique_ptr<View> make_attention_view(Workbench& wb) { return std::make_unique<AttentionView>(wb); }

const HeatmapLayout* attention_layout(const View& view) {
  auto* a = dynamic_cast<const AttentionView*>(&view);
  return a ? &a->layout() : nullptr;
}

}  // namespace ms::views
