// Prompt window: the text, its tokens as chips with ids, and the top-k next-token predictions.
// Editing re-runs the forward pass in the background (Workbench::run_prompt); nothing blocks here.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>

#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class PromptView : public View {
 public:
  explicit PromptView(Workbench& wb) : View(wb, "Prompt", "prompt") {}

 protected:
  void draw_content() override {
    if (!m_wb.model()) {
      ImGui::TextDisabled("open a model first (Model window, Ctrl+O)");
      return;
    }
    if (ImGui::InputTextMultiline("##prompt", &m_wb.prompt, ImVec2(-1, ImGui::GetTextLineHeight() * 4)))
      m_wb.run_prompt();
    if (!m_wb.model()->tokenizer()) ImGui::TextDisabled("no tokenizer: token ids separated by spaces");
    if (!m_wb.prompt_error().empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", m_wb.prompt_error().c_str());
    const auto& f = m_wb.forward();
    if (!f) {
      ImGui::TextDisabled(m_wb.forward_pending() ? "running..." : "no forward pass yet (Ctrl+Enter)");
      return;
    }
    ImGui::Text("%lld tokens, forward %.1f ms%s", static_cast<long long>(f->n_pos), f->seconds * 1e3,
                m_wb.forward_pending() ? "  (updating...)" : "");
    if (!m_wb.model_note().empty()) ImGui::TextDisabled("%s", m_wb.model_note().c_str());
    if (!f->context_note.empty()) ImGui::TextColored(ImVec4(1, 0.75f, 0.3f, 1), "warning: %s", f->context_note.c_str());
    ImGui::Separator();
    // Token chips: text above, id below, wrapping to the window width. Long prompts are capped.
    float right = ImGui::GetWindowPos().x + ImGui::GetWindowContentRegionMax().x;
    ImDrawList* dl = ImGui::GetWindowDrawList();
    size_t n = std::min<size_t>(f->tokens.size(), 512);
    for (size_t i = 0; i < n; ++i) {
      std::string text = f->tokens[i];
      std::string id = std::to_string(f->ids[i]);
      float w = std::max(ImGui::CalcTextSize(text.c_str()).x, ImGui::CalcTextSize(id.c_str()).x) + 10;
      float h = ImGui::GetTextLineHeight() * 2 + 6;
      if (i > 0) {
        ImGui::SameLine(0, 4);
        if (ImGui::GetCursorScreenPos().x + w > right) ImGui::NewLine();
      }
      ImVec2 p = ImGui::GetCursorScreenPos();
      ImGui::PushID(static_cast<int>(i));
      ImGui::InvisibleButton("chip", ImVec2(w, h));
      bool hov = ImGui::IsItemHovered();
      ImGui::PopID();
      dl->AddRectFilled(p, ImVec2(p.x + w, p.y + h), hov ? IM_COL32(70, 90, 140, 255) : IM_COL32(50, 60, 85, 255), 4);
      dl->AddText(ImVec2(p.x + 5, p.y + 2), IM_COL32(240, 240, 240, 255), text.c_str());
      dl->AddText(ImVec2(p.x + 5, p.y + 4 + ImGui::GetTextLineHeight()), IM_COL32(150, 160, 180, 255), id.c_str());
      if (hov) ImGui::SetTooltip("position %zu, id %d", i, f->ids[i]);
    }
    if (f->tokens.size() > n) ImGui::TextDisabled("... %zu more tokens", f->tokens.size() - n);
    ImGui::Separator();
    ImGui::TextUnformatted("next token");
    bool ab = !f->intervention.empty();
    if (ab) {
      ImGui::PushStyleColor(ImGuiCol_Text, ImVec4(1, 0.5f, 0.5f, 1));
      ImGui::TextWrapped("%s: top token %s (p %.3f)", f->intervention.c_str(),
                         f->top_ablated.empty() ? "" : f->top_ablated[0].token.c_str(),
                         f->top_ablated.empty() ? 0.0 : f->top_ablated[0].prob);
      ImGui::PopStyleColor();
    }
    if (ImGui::BeginTable("top", ab ? 4 : 3, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingStretchProp)) {
      ImGui::TableSetupColumn("token");
      ImGui::TableSetupColumn("id");
      ImGui::TableSetupColumn("probability");
      if (ab) ImGui::TableSetupColumn("with the intervention");
      ImGui::TableHeadersRow();
      for (size_t i = 0; i < f->top.size(); ++i) {
        const Prediction& p = f->top[i];
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(p.token.c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%d", p.id);
        ImGui::TableNextColumn();
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", p.prob);
        ImGui::ProgressBar(static_cast<float>(p.prob), ImVec2(-1, 0), buf);
        if (ab && i < f->top_prob_ablated.size()) {
          ImGui::TableNextColumn();
          double q = f->top_prob_ablated[i];
          std::snprintf(buf, sizeof buf, "%.3f (%+.3f)", q, q - p.prob);
          ImGui::ProgressBar(static_cast<float>(q), ImVec2(-1, 0), buf);
        }
      }
      ImGui::EndTable();
    }
  }
};
}  // namespace

std::unique_ptr<View> make_prompt_view(Workbench& wb) { return std::make_unique<PromptView>(wb); }

}  // namespace ms::views
