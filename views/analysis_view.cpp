// Analyses window: launch an analysis with its parameters as a background task (progress bar,
// cancel button), store it as a run in the database, and list every task of the session.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>

#include "core/analysis/retrieval/needle.h"
#include "runs/circuit_run.h"
#include "runs/dsae_circuit_run.h"
#include "runs/heads_run.h"
#include "runs/patch_run.h"
#include "runs/retrieval_run.h"
#include "runs/sae_features_run.h"
#include "runs/sae_train_run.h"
#include "runs/sae_heads_run.h"
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
    draw_sae_launch("SAE training", m_sae_train, "Train SAE", launch_sae_train);
    draw_sae_launch("SAE feature dashboards", m_sae_features, "Compute feature dashboards", launch_sae_features);
    draw_sae_heads();
    draw_spec_launch("Discrete-SAE circuit", m_sae_circuit_form, "Run discrete-SAE circuit", launch_sae_circuit);
    ImGui::Separator();
    ImGui::TextUnformatted("Tasks");
    ImGui::SameLine();
    if (ImGui::SmallButton("clear finished")) m_wb.tasks().clear_finished();
    for (const TaskSnapshot& t : m_wb.tasks().snapshot()) {
      // The workbench's own forward passes and model loads are listed only while they run (their
      // result is in the Prompt and Model windows); analyses stay listed with how they ended.
      const bool routine = t.name.rfind("forward pass", 0) == 0 || t.name.rfind("load ", 0) == 0;
      if (routine && !t.running && !t.failed) continue;
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
        // "cancelled" / "stored as run N" say how it ended; other statuses follow "finished:".
        if (t.status == "cancelled") ImGui::TextColored(ImVec4(1, 0.75f, 0.3f, 1), "cancelled");
        else ImGui::TextDisabled("finished: %s", t.status.empty() ? "done" : t.status.c_str());
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

  // The form, the prompts (a file or the current prompt) and the button of an SAE analysis.
  struct SaeSection {
    SpecForm form;
    bool use_file = true;
    std::string prompts_file = "resources/prompts/sink-check.jsonl";
  };
  void draw_sae_launch(const char* header, SaeSection& sec, const char* button,
                       void (*launch)(Workbench&, const SaeLaunchParams&)) {
    if (!ImGui::CollapsingHeader(header)) return;
    ImGui::PushID(header);
    sec.form.draw();
    ImGui::Checkbox("prompts file", &sec.use_file);
    ImGui::SameLine();
    if (sec.use_file) {
      ImGui::SetNextItemWidth(-1);
      ImGui::InputText("##file", &sec.prompts_file);
    } else {
      ImGui::TextDisabled("(the current prompt)");
    }
    if (ImGui::Button(button)) {
      SaeLaunchParams lp;
      std::string e = sec.form.params(&lp.params);
      if (sec.use_file) lp.prompts_file = sec.prompts_file;
      if (!e.empty()) m_wb.show_error(header, e);
      else launch(m_wb, lp);
    }
    ImGui::PopID();
  }

  void draw_retrieval() {
    if (!ImGui::CollapsingHeader("Retrieval heads (needle in a haystack)", ImGuiTreeNodeFlags_DefaultOpen)) return;
    ImGui::PushID("retrieval");
    if (m_needles_for != m_wb.model_path()) {  // a new model: its default needles file (none without a tokenizer)
      m_needles_for = m_wb.model_path();
      const bool text = m_wb.model() && m_wb.model()->tokenizer();
      m_retrieval_form.set_text("needles", text ? default_needles_file(m_needles_for) : "");
      std::string lengths;
      if (m_wb.model())
        for (int64_t l : default_lengths_for(m_wb.model()->config().n_ctx))
          lengths += (lengths.empty() ? "default here: " : ",") + std::to_string(l);
      m_retrieval_form.set_hint("lengths", lengths);
    }
    m_retrieval_form.draw();
    if (ImGui::Button("Run retrieval analysis")) {
      nlohmann::json params;
      std::string e = m_retrieval_form.params(&params);
      if (!e.empty()) m_wb.show_error("Retrieval analysis", e);
      else launch_retrieval(m_wb, params);
    }
    ImGui::PopID();
  }

  void draw_heads() {
    if (!ImGui::CollapsingHeader("Head detectors", ImGuiTreeNodeFlags_DefaultOpen)) return;
    ImGui::PushID("heads");
    int on = m_heads_on_prompt ? 1 : 0;
    ImGui::RadioButton("repeated random sequences", &on, 0);
    ImGui::SameLine();
    ImGui::RadioButton("the current prompt", &on, 1);
    m_heads_on_prompt = on == 1;
    if (m_heads_for != m_wb.model_path()) {
      // A model with a tokenizer is probed with repeated words: models trained on text (the default
      // one among them) may show no induction on repeats of arbitrary token ids.
      m_heads_for = m_wb.model_path();
      m_heads_form.set_text("draw", m_wb.model() && m_wb.model()->tokenizer() ? "words" : "random");
    }
    m_heads_form.draw();
    if (ImGui::Button("Run head detectors")) {
      HeadsParams hp;
      hp.on_prompt = m_heads_on_prompt;
      std::string e = m_heads_form.params(&hp.params);
      if (!e.empty()) m_wb.show_error("Head detectors", e);
      else launch_heads(m_wb, hp);
    }
    ImGui::PopID();
  }

  // A hook_z SAE's features by head; the SAE field starts as the one the Features window loaded.
  void draw_sae_heads() {
    if (!ImGui::CollapsingHeader("SAE features by head (hook_z SAE)")) return;
    ImGui::PushID("sae-heads");
    if (m_sae_heads_form.text("sae").empty() && !m_wb.sae_path.empty()) m_sae_heads_form.set_text("sae", m_wb.sae_path);
    m_sae_heads_form.draw();
    ImGui::SetNextItemWidth(-1);
    ImGui::InputTextWithHint("##prompts", "prompts file (empty: the current prompt)", &m_sae_heads_prompts);
    if (ImGui::Button("Run SAE head attribution")) {
      SaeLaunchParams sp;
      sp.prompts_file = m_sae_heads_prompts;
      std::string e = m_sae_heads_form.params(&sp.params);
      if (!e.empty()) m_wb.show_error("SAE heads", e);
      else launch_sae_heads(m_wb, sp);
    }
    ImGui::PopID();
  }

  std::string m_needles_for = "\x01";  // the model path the needles field was filled for
  bool m_heads_on_prompt = false;
  std::string m_heads_for = "\x01";  // the model path the draw field was set for
  SpecForm m_retrieval_form{retrieval_spec()};
  SpecForm m_heads_form{heads_spec()};
  SpecForm m_sinks_form{sinks_spec()};
  SpecForm m_patch_form{patch_spec()};
  SpecForm m_circuit_form{circuit_spec()};
  SaeSection m_sae_train{SpecForm(sae_train_spec())};
  SaeSection m_sae_features{SpecForm(sae_features_spec())};
  SpecForm m_sae_heads_form{sae_heads_spec()};
  std::string m_sae_heads_prompts;
  SpecForm m_sae_circuit_form{dsae_circuit_spec()};
  bool m_use_file = false;
  std::string m_prompts_file = "resources/prompts/sink-check.jsonl";
};
}  // namespace

std::unique_ptr<View> make_analysis_view(Workbench& wb) { return std::make_unique<AnalysisView>(wb); }

}  // namespace ms::views
