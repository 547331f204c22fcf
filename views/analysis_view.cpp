// Analyses window: launch an analysis with its parameters as a background task (progress bar,
// cancel button), store it as a run in the database, and list every task of the session.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>

#include "runs/circuit_run.h"
#include "runs/patch_run.h"
#include "runs/sinks_run.h"
#include "views/analyses.h"
#include "views/spec_form.h"
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
      m_sinks_form.draw();
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
        std::string e = m_sinks_form.params(&sp.params);
        if (m_use_file) sp.prompts_file = m_prompts_file;
        if (!e.empty()) m_wb.show_error("Sinks analysis", e);
        else launch_sinks(m_wb, sp);
      }
    }
    draw_retrieval();
    draw_heads();
    draw_spec_launch("Activation patching", m_patch_form, "Run activation patching", launch_patch);
    draw_spec_launch("Circuit discovery", m_circuit_form, "Run circuit discovery", launch_circuit);
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
  // A section whose fields come from the analysis' spec (views/spec_form.h).
  void draw_spec_launch(const char* header, SpecForm& form, const char* button,
                        void (*launch)(Workbench&, const nlohmann::json&)) {
    if (!ImGui::CollapsingHeader(header)) return;
    ImGui::PushID(header);
    form.draw();
    if (ImGui::Button(button)) {
      nlohmann::json params;
      std::string e = form.params(&params);
      if (!e.empty()) m_wb.show_error(header, e);
      else launch(m_wb, params);
    }
    ImGui::PopID();
  }

  void draw_retrieval() {
    if (!ImGui::CollapsingHeader("Retrieval heads (needle in a haystack)", ImGuiTreeNodeFlags_DefaultOpen)) return;
    ImGui::PushID("retrieval");
    if (m_needles_for != m_wb.model_path()) {  // a new model: its default needles file
      m_needles_for = m_wb.model_path();
      m_rp.needles = default_needles_file(m_needles_for);
    }
    const bool text = m_wb.model() && m_wb.model()->tokenizer();
    ImGui::SetNextItemWidth(-110);
    if (!text) ImGui::BeginDisabled();
    ImGui::InputText("needles", &m_rp.needles);
    if (!text) ImGui::EndDisabled();
    if (!text && ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled))
      ImGui::SetTooltip("no tokenizer: token-id needles are used");
    ImGui::SetNextItemWidth(-110);
    ImGui::InputTextWithHint("lengths", "default: 10 from 256 to the context", &m_rp.lengths);
    int depths = static_cast<int>(m_rp.depths), mask = static_cast<int>(m_rp.mask_top);
    ImGui::SetNextItemWidth(90);
    if (ImGui::InputInt("depths", &depths)) m_rp.depths = std::max(1, depths);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(90);
    ImGui::InputDouble("threshold", &m_rp.threshold, 0.05, 0.1, "%.2f");
    ImGui::SetNextItemWidth(90);
    if (ImGui::InputInt("mask top K (0: no)", &mask)) m_rp.mask_top = std::max(0, mask);
    if (ImGui::Button("Run retrieval analysis")) launch_retrieval(m_wb, m_rp);
    ImGui::PopID();
  }

  void draw_heads() {
    if (!ImGui::CollapsingHeader("Head detectors", ImGuiTreeNodeFlags_DefaultOpen)) return;
    ImGui::PushID("heads");
    ImGui::Checkbox("previous", &m_hp.previous);
    ImGui::SameLine();
    ImGui::Checkbox("duplicate", &m_hp.duplicate);
    ImGui::SameLine();
    ImGui::Checkbox("induction", &m_hp.induction);
    int on = m_hp.on_prompt ? 1 : 0;
    ImGui::RadioButton("repeated random tokens", &on, 0);
    ImGui::SameLine();
    ImGui::RadioButton("the current prompt", &on, 1);
    m_hp.on_prompt = on == 1;
    if (!m_hp.on_prompt) {
      int seq = static_cast<int>(m_hp.seq_len), n = static_cast<int>(m_hp.n), seed = static_cast<int>(m_hp.seed);
      ImGui::SetNextItemWidth(90);
      if (ImGui::InputInt("seq len", &seq)) m_hp.seq_len = std::max(2, seq);
      ImGui::SameLine();
      ImGui::SetNextItemWidth(90);
      if (ImGui::InputInt("sequences", &n)) m_hp.n = std::max(1, n);
      ImGui::SameLine();
      ImGui::SetNextItemWidth(90);
      if (ImGui::InputInt("seed", &seed)) m_hp.seed = static_cast<uint64_t>(std::max(0, seed));
    }
    if (ImGui::Button("Run head detectors")) launch_heads(m_wb, m_hp);
    ImGui::PopID();
  }

  RetrievalParams m_rp;
  std::string m_needles_for = "\x01";  // the model path m_rp.needles was chosen for
  HeadsParams m_hp;
  SpecForm m_sinks_form{sinks_spec()};
  SpecForm m_patch_form{patch_spec()};
  SpecForm m_circuit_form{circuit_spec()};
  bool m_use_file = false;
  std::string m_prompts_file = "resources/prompts/sink-check.jsonl";
};
}  // namespace

std::unique_ptr<View> make_analysis_view(Workbench& wb) { return std::make_unique<AnalysisView>(wb); }

}  // namespace ms::views
