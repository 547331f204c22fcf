// Model window: open a model folder (path field + recent folders), its architecture and sizes, and
// its hook point tree grouped by block. Load errors appear in the shell's error popup.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <cstdio>
#include <map>
#include <vector>

#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class ModelView : public View {
 public:
  explicit ModelView(Workbench& wb) : View(wb, "Model", "model") {}

 protected:
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
    m_rows.clear();
    const bool tree_open = ImGui::CollapsingHeader("Hook points");
    note_row("header", "hook_points", tree_open);
    if (tree_open) {
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
        note_row("point", n, false);
      };
      for (const auto& n : top) point(n);
      for (const auto& [l, names] : blocks) {
        const std::string block = "blocks." + std::to_string(l);
        const bool block_open = ImGui::TreeNode(block.c_str());
        note_row("block", block, block_open);
        if (block_open) {
          for (const auto& n : names) point(n);
          ImGui::TreePop();
        }
      }
    }
  }

 public:
  // Headless: each row of the hook tree drawn last frame, in window pixels (tests click them).
  std::string layout_report() const override {
    std::string out;
    char line[384];
    for (const Row& r : m_rows) {
      std::snprintf(line, sizeof line, "hook_row: kind=%s name=%s x=%.1f y=%.1f w=%.1f h=%.1f open=%d visible=%d\n",
                    r.kind, r.name.c_str(), r.x, r.y, r.w, r.h, r.open, r.visible);
      out += line;
    }
    return out;
  }

 private:
  struct Row {
    const char* kind;
    std::string name;
    float x, y, w, h;
    int open, visible;
  };
  void note_row(const char* kind, const std::string& name, bool open) {
    ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
    m_rows.push_back({kind, name, a.x, a.y, b.x - a.x, b.y - a.y, open, ImGui::IsItemVisible()});
  }

  std::string m_path;
  std::vector<Row> m_rows;
};
}  // namespace

std::unique_ptr<View> make_model_view(Workbench& wb) { return std::make_unique<ModelView>(wb); }

}  // namespace ms::views
