// Activations window: one hook point's activation for the current prompt (the Model window's hook
// tree opens it; the pass caches just that point), positions x features as a heatmap on a diverging
// scale, the prompt's top-activating tokens for a clicked column, and .npy export of the cache (a
// background task with progress and cancel).
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "views/heatmap_widget.h"
#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class ActivationsView : public View {
 public:
  explicit ActivationsView(Workbench& wb) : View(wb, "Activations", "activations") {
    m_heat.set_scale(HeatScale::kSigned);
  }

 protected:
  void draw_content() override {
    if (!m_wb.model()) {
      ImGui::TextDisabled("open a model first (Model window, Ctrl+O)");
      return;
    }
    if (m_seen_hook != m_wb.act_hook) m_name = m_seen_hook = m_wb.act_hook;  // opened from elsewhere
    ImGui::SetNextItemWidth(300);
    if (ImGui::InputTextWithHint("hook point", "e.g. blocks.0.hook_resid_post", &m_name, ImGuiInputTextFlags_EnterReturnsTrue))
      m_wb.open_activation(m_name);
    ImGui::SameLine();
    ImGui::TextDisabled("(or click one in the Model window's hook tree)");
    if (ImGui::CollapsingHeader("Export .npy")) {
      ImGui::SetNextItemWidth(300);
      ImGui::InputTextWithHint("folder", "where the .npy files go", &m_folder);
      ImGui::BeginDisabled(m_wb.export_running());
      ImGui::SameLine();
      if (ImGui::Button("this hook point")) m_wb.export_activations(m_folder, false);
      ImGui::SameLine();
      if (ImGui::Button("every hook point")) m_wb.export_activations(m_folder, true);
      ImGui::EndDisabled();
      draw_export_progress();
    }
    const auto& f = m_wb.forward();
    if (m_wb.act_hook.empty()) {
      ImGui::TextDisabled("no hook point chosen");
      return;
    }
    if (!f || f->act_name != m_wb.act_hook) {
      ImGui::TextDisabled(m_wb.forward_pending() ? "computing..." : "no forward pass yet");
      return;
    }
    if (!f->act_error.empty()) {
      ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", f->act_error.c_str());
      return;
    }
    if (m_gen != m_wb.forward_generation()) {
      m_gen = m_wb.forward_generation();
      const bool neurons = m_wb.act_hook.find("mlp.hook_") != std::string::npos;
      const bool heads = !f->act_col_labels.empty();
      m_heat.set_matrix(f->act_matrix, static_cast<int>(f->act_rows), static_cast<int>(f->act_cols), f->tokens,
                        f->act_col_labels);
      m_heat.set_titles("position", neurons ? "neuron" : heads ? "head:index" : "dim", "activation");
      m_fit_rows = true;
      // Until a column is clicked: the one with the largest |activation|.
      if (m_col < 0 || m_col >= f->act_cols || m_auto_col) {
        m_auto_col = true;
        float best = -1;
        for (size_t i = 0; i < f->act_matrix->size(); ++i)
          if (std::fabs((*f->act_matrix)[i]) > best) best = std::fabs((*f->act_matrix)[i]), m_col = static_cast<int>(i % f->act_cols);
      }
    }
    std::string shape;
    for (int64_t d : f->act.sizes()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    ImGui::TextDisabled("%s  [%s]  shown as %lld positions x %lld; click a column for its top tokens", f->act_name.c_str(),
                        shape.c_str(), static_cast<long long>(f->act_rows), static_cast<long long>(f->act_cols));
    ImVec2 avail = ImGui::GetContentRegionAvail();
    const float child_h = std::max(120.f, avail.y * 0.62f);
    if (m_fit_rows) {  // a few positions x hundreds of features: the rows fill the height (pan for the rest)
      m_fit_rows = false;
      m_heat.set_view(std::clamp((child_h - 40.0) / std::max<int64_t>(1, f->act_rows), 1.0, 24.0), 0, 0);
    }
    ImGui::TextDisabled("wheel: zoom, drag: pan, double-click: fit everything");
    if (ImGui::BeginChild("##act", ImVec2(0, child_h))) m_heat.draw();
    ImGui::EndChild();
    int r = 0, c = 0;
    if (m_heat.clicked(&r, &c)) m_col = c, m_auto_col = false;
    ImGui::SetNextItemWidth(120);
    if (ImGui::InputInt("column", &m_col)) m_auto_col = false;
    m_col = std::clamp(m_col, 0, static_cast<int>(f->act_cols) - 1);
    ImGui::SameLine();
    ImGui::TextDisabled("%s", m_col < static_cast<int>(f->act_col_labels.size()) ? f->act_col_labels[m_col].c_str() : "");
    if (ImGui::BeginTable("top", 3, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingStretchProp | ImGuiTableFlags_ScrollY)) {
      ImGui::TableSetupColumn("position");
      ImGui::TableSetupColumn("token");
      ImGui::TableSetupColumn("activation");
      ImGui::TableHeadersRow();
      for (auto [t, v] : f->top_positions(m_col, 10)) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::Text("%lld", static_cast<long long>(t));
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(f->tokens[static_cast<size_t>(t)].c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%+.4f", v);
      }
      ImGui::EndTable();
    }
  }

 public:
  // Headless: the point shown, its matrix's shape and the column picked, with the values it shows
  // (every cell when the matrix is small), for tests to compare with `forward --cache`.
  std::string layout_report() const override {
    const auto& f = m_wb.forward();
    if (m_wb.act_hook.empty() || !f || f->act_name != m_wb.act_hook || !f->act_error.empty() || !f->act_matrix) return "";
    std::string out;
    char buf[64];
    std::string shape;
    for (int64_t d : f->act.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    out += "activations: hook=" + f->act_name + " shape=" + shape + " rows=" + std::to_string(f->act_rows) +
           " cols=" + std::to_string(f->act_cols) + " col=" + std::to_string(m_col) + "\n";
    const int64_t rows = f->act_rows, cols = f->act_cols;
    if (rows * cols <= 16384)
      for (int64_t r = 0; r < rows; ++r) {
        out += "act_row: " + std::to_string(r);
        for (int64_t c = 0; c < cols; ++c) {
          std::snprintf(buf, sizeof buf, " %.9g", (*f->act_matrix)[static_cast<size_t>(r * cols + c)]);
          out += buf;
        }
        out += "\n";
      }
    return out;
  }

 private:
  // The running export's progress bar and Cancel button (a background task), else the last one's note.
  void draw_export_progress() {
    if (m_wb.export_running()) {
      for (const TaskSnapshot& t : m_wb.tasks().snapshot()) {
        if (t.id != m_wb.export_task()) continue;
        ImGui::ProgressBar(static_cast<float>(t.progress), ImVec2(300, 0), t.status.c_str());
        ImGui::SameLine();
        ImGui::BeginDisabled(t.cancel_requested);
        if (ImGui::Button("Cancel##export")) m_wb.tasks().cancel(t.id);
        ImGui::EndDisabled();
      }
    } else if (!m_wb.export_note().empty()) {
      ImGui::TextDisabled("%s", m_wb.export_note().c_str());
    }
  }

  HeatmapWidget m_heat;
  int64_t m_gen = -1;
  std::string m_name, m_seen_hook, m_folder = "activations";
  int m_col = -1;
  bool m_auto_col = true;
  bool m_fit_rows = false;
};
}  // namespace

std::unique_ptr<View> make_activations_view(Workbench& wb) { return std::make_unique<ActivationsView>(wb); }

}  // namespace ms::views
