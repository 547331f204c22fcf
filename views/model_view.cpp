// Model window: open a model folder (path field + recent folders), its architecture and sizes, and
// its hook point tree grouped by block. Load errors appear in the shell's error popup.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <map>

#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class ModelView : public View {
 public:
  explicit ModelView(Workbench& wb) : View(wb, "Model", "model") {}

 protected:
  void default_rect(float* x, float* y, float* w, float* h) const override {
    *x = 0.0f, *y = 0.0f, *w = 0.25f, *h = 0.5f;
  }

  void draw_content() override {
    if (m_path.empty() && !m_wb.model_path().empty()) m_path = m_wb.model_path();
    if (m_wb.focus_model_path) {
      ImGui::SetKeyboardFocusHere();
      m_wb.focus_model_path = false;
    }
    ImGui::SetNextItemWidth(-70);
    bool enter = ImGui::InputTextWithHint("##path", "model folder or .gguf file", &m_path,
                                          ImGuiInputTextFlags_EnterReturnsTrue);
    ImGui::SameLine();
    if (ImGui::Button("Open") || enter) m_wb.open_model(m_path);
    if (!m_wb.settings().recent_models.empty() && ImGui::BeginCombo("recent", "recent folders")) {
      for (const std::string& r : m_wb.settings().recent_models)
        if (ImGui::Selectable(r.c_str())) {
          m_path = r;
          m_wb.open_model(r);
        }
      ImGui::EndCombo();
    }
    if (m_wb.model_loading()) ImGui::TextColored(ImVec4(1, 0.8f, 0.3f, 1), "loading...");
    const auto& model = m_wb.model();
    if (!model) {
      ImGui::TextDisabled("no model open (Ctrl+O)");
      return;
    }
    const ModelConfig& c = model->config();
    ImGui::Separator();
    ImGui::TextWrapped("%s", model->source().c_str());
    if (ImGui::BeginTable("arch", 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV)) {
      auto row = [](const char* k, const std::string& v) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(k);
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(v.c_str());
      };
      row("architecture", c.model_type);
      row("layers", std::to_string(c.n_layers));
      row("heads", std::to_string(c.n_heads) + (c.n_kv_heads != c.n_heads ? " (" + std::to_string(c.n_kv_heads) + " kv)" : ""));
      row("d_model / d_head", std::to_string(c.d_model) + " / " + std::to_string(c.d_head));
      row("d_mlp", c.attn_only() ? std::string("attention only") : std::to_string(c.d_mlp));
      row("vocabulary", std::to_string(c.d_vocab));
      row("context", std::to_string(c.n_ctx));
      row("norm / act / pos", std::string(norm_name(c.norm)) + " / " + act_name(c.act) + " / " + pos_name(c.pos));
      row("parameters", std::to_string(model->parameter_count()));
      row("tokenizer", model->tokenizer() ? model->tokenizer()->kind() : std::string("none (prompts are ids)"));
      ImGui::EndTable();
    }
    if (ImGui::CollapsingHeader("Hook points")) {
      // Group "blocks.L.*" under one node per block.
      std::map<int, std::vector<std::string>> blocks;
      std::vector<std::string> top;
      for (const std::string& n : model->hook_points().names()) {
        if (n.rfind("blocks.", 0) == 0) blocks[std::atoi(n.c_str() + 7)].push_back(n);
        else top.push_back(n);
      }
      // A click opens the point's activation for the current prompt (the Activations window).
      ImGui::TextDisabled("click a hook point to see its activation");
      auto point = [&](const std::string& n) {
        ImGui::Bullet();
        if (ImGui::Selectable(n.c_str(), n == m_wb.act_hook)) m_wb.open_activation(n);
      };
      for (const auto& n : top) point(n);
      for (const auto& [l, names] : blocks) {
        if (ImGui::TreeNode(("blocks." + std::to_string(l)).c_str())) {
          for (const auto& n : names) point(n);
          ImGui::TreePop();
        }
      }
    }
  }

 private:
  std::string m_path;
};
}  // namespace

std::unique_ptr<View> make_model_view(Workbench& wb) { return std::make_unique<ModelView>(wb); }

}  // namespace ms::views
