// Text window: the prompt as wrapped tokens (CircuitsVis-style), shaded by how much the hovered or
// pinned token attends to each token (or, reversed, how much each attends to it) for the selected
// head, the mean over its layer's heads or the mean over every head (ForwardResult's averages), on
// the row's maximum or on an absolute 0..1 scale, with a legend.
#include "views/text_view.h"

#include <imgui.h>

#include "views/token_text_widget.h"
#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class TextView : public View {
 public:
  explicit TextView(Workbench& wb) : View(wb, "Text", "text") {}
  const TokenTextWidget& widget() const { return m_text; }

 protected:
  void draw_content() override {
    if (!have_forward()) return;
    const auto& f = m_wb.forward();
    if (m_gen != m_wb.forward_generation()) {
      m_text.set_tokens(f->tokens);
      m_gen = m_wb.forward_generation();
      m_asked = false;
    }
    int layer = m_wb.layer, head = m_wb.head;
    int heads = static_cast<int>(m_wb.text_heads);
    ImGui::SetNextItemWidth(170);
    ImGui::Combo("heads", &heads, "selected head\0mean of the layer's heads\0mean of all heads\0");
    m_wb.text_heads = static_cast<Workbench::TextHeads>(heads);
    const bool all = m_wb.text_heads == Workbench::TextHeads::kAllMean;
    ImGui::BeginDisabled(all);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(100);
    bool changed = ImGui::SliderInt("layer", &layer, 0, static_cast<int>(f->n_layers) - 1);
    ImGui::EndDisabled();
    ImGui::BeginDisabled(m_wb.text_heads != Workbench::TextHeads::kHead);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(100);
    changed |= ImGui::SliderInt("head", &head, 0, static_cast<int>(f->n_heads) - 1);
    ImGui::EndDisabled();
    ImGui::SameLine();
    int dir = m_wb.text_received ? 1 : 0;
    ImGui::SetNextItemWidth(200);
    ImGui::Combo("##direction", &dir, "attention it pays (row)\0attention it receives (column)\0");
    m_wb.text_received = dir == 1;

    // Averages are kept only while asked for (later passes drop them once one head is shown
    // again); a pass that lacks them is re-run once.
    m_wb.want_head_means = m_wb.text_heads != Workbench::TextHeads::kHead;
    if (changed) m_wb.select_head(layer, head);
    std::shared_ptr<const std::vector<float>> mat;
    switch (m_wb.text_heads) {
      case Workbench::TextHeads::kHead: mat = f->pattern(m_wb.layer, m_wb.head); break;
      case Workbench::TextHeads::kLayerMean: mat = f->layer_mean(m_wb.layer); break;
      case Workbench::TextHeads::kAllMean: mat = f->all_heads_mean; break;
    }
    if (!mat && !m_asked && !m_wb.forward_pending()) {
      m_wb.run_prompt();
      m_asked = true;
    }
    m_text.set_matrix(mat);
    m_text.set_received(m_wb.text_received);
    m_text.set_absolute(m_wb.text_absolute);
    m_text.set_pinned(m_wb.pinned_token);

    // The colour scale and its legend (the full shade: the row's maximum, or 1).
    int absolute = m_wb.text_absolute ? 1 : 0;
    ImGui::SetNextItemWidth(170);
    ImGui::Combo("scale", &absolute, "row max\0absolute (0..1)\0");
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("row max: the largest weight in the row takes the full shade\n"
                        "absolute: weights shaded against 1, so a diffuse head looks pale");
    m_wb.text_absolute = absolute == 1;
    m_text.set_absolute(m_wb.text_absolute);
    ImGui::SameLine();
    m_text.draw_legend(140);

    if (!mat) ImGui::TextDisabled("computing...");
    else if (m_text.focus() < 0) ImGui::TextDisabled("%lld tokens: hover a token to shade what it %s, click to pin it",
                                                     static_cast<long long>(f->n_pos), m_wb.text_received ? "receives" : "attends to");
    else ImGui::TextDisabled("token %d %s %s  (row max %.3g, full shade = %.3g)%s", m_text.focus(), f->tokens[m_text.focus()].c_str(),
                             m_wb.text_received ? "is attended by" : "attends to", m_text.focus_max(),
                             m_wb.text_absolute ? 1.0 : m_text.focus_max(), m_text.focus() == m_wb.pinned_token ? "  pinned" : "");
    m_text.draw();
    m_wb.pinned_token = m_text.pinned();
  }

 private:
  TokenTextWidget m_text;
  int64_t m_gen = -1;
  bool m_asked = false;  // a re-run for missing averages was asked for this pass
};
}  // namespace

std::unique_ptr<View> make_text_view(Workbench& wb) { return std::make_unique<TextView>(wb); }

const TokenTextWidget* text_widget(const View& view) {
  auto* t = dynamic_cast<const TextView*>(&view);
  return t ? &t->widget() : nullptr;
}

}  // namespace ms::views
