// Analyses window: launch an analysis with its parameters as a background task (progress bar,
// cancel button), store it as a run in the database, and list every task of the session.
#include <imgui.h>
#include <imgui_stdlib.h>

#include "views/analyses.h"
#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class AnalysisView : public View {
 public:
  explicit AnalysisView(Workbench& wb) : View(wb, "Analyses", "analyses") {}

 protected:
  void default_rect(float* x, float* y, float* w, float* h) const override {
    *x = 0.5f, *y = 0.62f, *w = 0.25f, *h = 0.38f;
  }

  void draw_content() override {
    if (ImGui::CollapsingHeader("Attention sinks", ImGuiTreeNodeFlags_DefaultOpen)) {
      ImGui::SetNextItemWidth(120);
      ImGui::InputDouble("epsilon", &m_epsilon, 0.05, 0.1, "%.2f");
      ImGui::SetNextItemWidth(120);
      ImGui::InputDouble("hidden threshold", &m_hidden, 0.05, 0.1, "%.2f");
      ImGui::Checkbox("prompts file", &m_use_file);
      if (m_use_file) {
        ImGui::SameLine();
        ImGui::SetNextItemWidth(-1);
        ImGui::InputText("##file", &m_prompts_file);
      } else {
        ImGui::SameLine();
        ImGui::TextDisabled("(the current prompt)");
      }
      if (ImGui::Button("Run sinks analysis")) {
        SinksParams sp;
        sp.epsilon = m_epsilon;
        sp.hidden_threshold = m_hidden;
        if (m_use_file) sp.prompts_file = m_prompts_file;
        launch_sinks(m_wb, sp);
      }
    }
    ImGui::Separator();
    ImGui::TextUnformatted("Tasks");
    ImGui::SameLine();
    if (ImGui::SmallButton("clear finished")) m_wb.tasks().clear_finished();
    for (const TaskSnapshot& t : m_wb.tasks().snapshot()) {
      ImGui::PushID(static_cast<int>(t.id));
      ImGui::TextUnformatted(t.name.c_str());
      ImGui::SameLine();
      if (t.running) {
        ImGui::ProgressBar(static_cast<float>(t.progress), ImVec2(140, 0), t.status.c_str());
        ImGui::SameLine();
        if (t.cancel_requested) ImGui::TextDisabled("cancelling");
        else if (ImGui::SmallButton("cancel")) m_wb.tasks().cancel(t.id);
      } else if (t.failed) {
        ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "failed: %s", t.error.c_str());
      } else {
        ImGui::TextDisabled("done %s", t.status.c_str());
      }
      ImGui::PopID();
    }
  }

 private:
  double m_epsilon = 0.3, m_hidden = 0.1;
  bool m_use_file = false;
  std::string m_prompts_file = "resources/prompts/sink-check.jsonl";
};
}  // namespace

std::unique_ptr<View> make_analysis_view(Workbench& wb) { return std::make_unique<AnalysisView>(wb); }

}  // namespace ms::views
