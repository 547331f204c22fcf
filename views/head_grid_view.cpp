// Head grid window: layer x head heatmap of a per-head metric, either from the current prompt
// (alpha0, attention on the first token, from core) or any metric of a stored run; click a head to open its attention.
// Selecting a run (Runs window, `gui --run`) shows that run's first metric.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/base/colormap.h"
#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
struct MetricSource {
  std::string label;
  int64_t run_id = 0;  // 0: the current prompt
  HeadScores scores;
  std::string model_path;  // the stored run's model ("" for the current prompt)
};

class HeadGridView : public View {
 public:
  explicit HeadGridView(Workbench& wb) : View(wb, "Head grid", "heads") {}

 protected:
  void refresh_stored() {
    m_stored.clear();
    Database* db = m_wb.db();
    if (!db) return;
    auto runs = db->list_runs();
    if (!runs) return;
    for (const RunSummary& s : *runs) {
      if (s.n_scores == 0 || s.run.status != RunStatus::kDone) continue;
      auto all = db->get_head_scores(s.run.id);
      if (!all) continue;
      for (HeadScores& hs : *all)
        m_stored.push_back({"run " + std::to_string(s.run.id) + " " + s.run.spec.kind + ": " + hs.metric + "  [" +
                                std::filesystem::path(s.model_path).filename().string() + "]",
                            s.run.id, hs, s.model_path});
    }
  }

  void draw_content() override {
    if (m_db_gen != m_wb.db_generation()) {
      m_db_gen = m_wb.db_generation();
      refresh_stored();
    }
    std::vector<const MetricSource*> sources;
    MetricSource current;
    if (const auto& f = m_wb.forward()) {
      current.label = "this prompt: alpha0 (attention on the first token)";
      current.scores.metric = "alpha0";
      current.scores.n_layers = static_cast<int>(f->n_layers);
      current.scores.n_heads = static_cast<int>(f->n_heads);
      current.scores.values = f->alpha0;
      sources.push_back(&current);
    }
    for (const auto& s : m_stored) sources.push_back(&s);
    if (sources.empty()) {
      ImGui::TextDisabled("no prompt and no stored run with head scores");
      return;
    }
    // The choice is kept by its label: the current prompt's source comes and goes (a model loading,
    // a prompt rerunning) and would shift the index of every stored one.
    for (int i = 0; i < static_cast<int>(sources.size()); ++i)
      if (sources[i]->label == m_choice_label) m_choice = i;
    if (m_followed_run != m_wb.selected_run) {  // a run picked (Runs window, --run): show its first metric
      if (m_wb.selected_run <= 0) m_followed_run = m_wb.selected_run;
      for (int i = 0; i < static_cast<int>(sources.size()); ++i)
        if (m_wb.selected_run > 0 && sources[i]->run_id == m_wb.selected_run) {  // once it is listed
          m_choice = i;
          m_followed_run = m_wb.selected_run;
          break;
        }
    }
    m_choice = std::min<int>(m_choice, static_cast<int>(sources.size()) - 1);
    m_choice_label = sources[m_choice]->label;
    if (ImGui::BeginCombo("metric", sources[m_choice]->label.c_str())) {
      for (int i = 0; i < static_cast<int>(sources.size()); ++i)
        if (ImGui::Selectable(sources[i]->label.c_str(), i == m_choice)) m_choice = i, m_choice_label = sources[i]->label;
      ImGui::EndCombo();
    }
    ImGui::SameLine();
    if (ImGui::SmallButton("refresh")) refresh_stored();
    const HeadScores& hs = sources[m_choice]->scores;
    if (hs.n_layers == 0 || hs.n_heads == 0) return;
    // A run of another model is not drawn over this one's heads (its L.H are another model's).
    const std::string& run_model = sources[m_choice]->model_path;
    if (sources[m_choice]->run_id > 0 && m_wb.model() && !m_wb.is_open_model(run_model)) {
      ImGui::TextWrapped("run %lld is of another model (%s), not the open one (%s): its heads are not this model's. "
                         "Open that model to see them.",
                         static_cast<long long>(sources[m_choice]->run_id), run_model.c_str(), m_wb.model_path().c_str());
      if (ImGui::SmallButton("open that model")) m_wb.open_model(run_model);
      return;
    }
    // Honest scales: scores that live in [0, 1] (attention fractions, detector scores) are drawn on
    // 0..1 by default, so a score of 0.06 stays dark; "this run's range" stretches min..max instead.
    bool unit = true;
    for (double v : hs.values) unit = unit && (std::isnan(v) || (v >= 0 && v <= 1));
    ImGui::SetNextItemWidth(170);
    const char* scale_names[] = {"absolute (0 to 1)", "this run's range"};
    if (!unit) ImGui::BeginDisabled();
    ImGui::Combo("scale", &m_scale_choice, scale_names, 2);
    if (!unit) ImGui::EndDisabled();
    ColorScale scale = color_scale_for(hs.values);
    if (unit && m_scale_choice == 0) scale = ColorScale{Colormap::kViridis, 0.0, 1.0};

    ImVec2 avail = ImGui::GetContentRegionAvail();
    float label_w = 36, label_h = ImGui::GetTextLineHeight() + 2;
    const float bar_w = 14, bar_room = 70;  // the colour bar and its labels, right of the grid
    float cell = std::min({(avail.x - label_w - bar_room) / hs.n_heads, (avail.y - label_h - 4) / hs.n_layers, 64.f});
    cell = std::max(cell, 6.f);
    ImVec2 p = ImGui::GetCursorScreenPos();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    char buf[32];
    for (int h = 0; h < hs.n_heads; ++h) {
      std::snprintf(buf, sizeof buf, "H%d", h);
      dl->AddText(ImVec2(p.x + label_w + h * cell + 2, p.y), IM_COL32(200, 200, 200, 255), buf);
    }
    for (int l = 0; l < hs.n_layers; ++l) {
      std::snprintf(buf, sizeof buf, "L%d", l);
      dl->AddText(ImVec2(p.x, p.y + label_h + l * cell + cell / 2 - label_h / 2), IM_COL32(200, 200, 200, 255), buf);
      for (int h = 0; h < hs.n_heads; ++h) {
        double v = hs.at(l, h);
        Rgb c = colormap_at(scale.map, scale.normalize(v));
        ImVec2 a(p.x + label_w + h * cell, p.y + label_h + l * cell);
        ImVec2 b(a.x + cell - 1, a.y + cell - 1);
        dl->AddRectFilled(a, b, IM_COL32(c.r, c.g, c.b, 255));
        if (l == m_wb.layer && h == m_wb.head) dl->AddRect(a, b, IM_COL32(255, 80, 80, 255), 0, 0, 2);
        if (cell >= 40 && !std::isnan(v)) {
          std::snprintf(buf, sizeof buf, "%.2f", v);
          int lum = (c.r * 3 + c.g * 6 + c.b) / 10;
          dl->AddText(ImVec2(a.x + 3, a.y + cell / 2 - label_h / 2), lum > 128 ? IM_COL32(0, 0, 0, 255) : IM_COL32(255, 255, 255, 255), buf);
        }
      }
    }
    {  // colour bar: top = scale.hi, bottom = scale.lo
      float bx = p.x + label_w + hs.n_heads * cell + 8, by = p.y + label_h, bh = hs.n_layers * cell;
      const int steps = 48;
      for (int i = 0; i < steps; ++i) {
        Rgb c = colormap_at(scale.map, 1.0 - (i + 0.5) / steps);
        dl->AddRectFilled(ImVec2(bx, by + bh * i / steps), ImVec2(bx + bar_w, by + bh * (i + 1) / steps + 1), IM_COL32(c.r, c.g, c.b, 255));
      }
      std::snprintf(buf, sizeof buf, "%.3g", scale.hi);
      dl->AddText(ImVec2(bx + bar_w + 3, by), IM_COL32(220, 220, 220, 255), buf);
      std::snprintf(buf, sizeof buf, "%.3g", scale.lo);
      dl->AddText(ImVec2(bx + bar_w + 3, by + bh - label_h), IM_COL32(220, 220, 220, 255), buf);
    }
    ImGui::InvisibleButton("##grid", ImVec2(label_w + hs.n_heads * cell, label_h + hs.n_layers * cell));
    if (ImGui::IsItemHovered()) {
      ImVec2 m = ImGui::GetIO().MousePos;
      int h = static_cast<int>((m.x - p.x - label_w) / cell), l = static_cast<int>((m.y - p.y - label_h) / cell);
      if (m.x >= p.x + label_w && m.y >= p.y + label_h && h < hs.n_heads && l < hs.n_layers) {
        ImGui::SetTooltip("L%d H%d  %s = %.4f\nclick: open its attention", l, h, hs.metric.c_str(), hs.at(l, h));
        if (ImGui::IsMouseClicked(ImGuiMouseButton_Left)) {
          m_wb.select_head(l, h);
          m_wb.focus_window = "Attention";
        }
        if (ImGui::IsMouseClicked(ImGuiMouseButton_Right)) {
          m_menu_layer = l, m_menu_head = h;
          ImGui::OpenPopup("##head_menu");
        }
      }
    }
    if (ImGui::BeginPopup("##head_menu")) {
      std::pair<int, int> lh{m_menu_layer, m_menu_head};
      auto& ab = m_wb.ablated;
      bool on = std::find(ab.begin(), ab.end(), lh) != ab.end();
      ImGui::TextDisabled("head L%d H%d", m_menu_layer, m_menu_head);
      if (ImGui::MenuItem(on ? "Restore this head and re-run" : "Ablate this head (zero its output) and re-run")) {
        if (on) ab.erase(std::remove(ab.begin(), ab.end(), lh), ab.end());
        else ab.push_back(lh);
        m_wb.run_prompt();
        m_wb.focus_window = "Prompt";
      }
      auto& cal = m_wb.calibrated;
      bool con = std::find(cal.begin(), cal.end(), lh) != cal.end();
      if (ImGui::MenuItem(con ? "Stop calibrating this head and re-run" : "Calibrate this head (ACT, beta 0.4) and re-run")) {
        if (con) cal.erase(std::remove(cal.begin(), cal.end(), lh), cal.end());
        else cal.push_back(lh);
        m_wb.run_prompt();
        m_wb.focus_window = "Prompt";
      }
      if ((!ab.empty() || !cal.empty()) && ImGui::MenuItem("Restore all heads and re-run")) {
        ab.clear();
        cal.clear();
        m_wb.run_prompt();
      }
      if (ImGui::MenuItem("Open its attention")) {
        m_wb.select_head(m_menu_layer, m_menu_head);
        m_wb.focus_window = "Attention";
      }
      ImGui::EndPopup();
    }
    for (auto [l, h] : m_wb.calibrated) {  // calibrated heads: an orange frame
      if (l >= hs.n_layers || h >= hs.n_heads) continue;
      ImVec2 a(p.x + label_w + h * cell + 2, p.y + label_h + l * cell + 2), b(a.x + cell - 5, a.y + cell - 5);
      dl->AddRect(a, b, IM_COL32(255, 170, 40, 255), 0, 0, 3);
    }
    for (auto [l, h] : m_wb.ablated) {  // ablated heads: crossed out
      if (l >= hs.n_layers || h >= hs.n_heads) continue;
      ImVec2 a(p.x + label_w + h * cell, p.y + label_h + l * cell), b(a.x + cell - 1, a.y + cell - 1);
      dl->AddLine(a, b, IM_COL32(255, 80, 80, 255), 2);
      dl->AddLine(ImVec2(a.x, b.y), ImVec2(b.x, a.y), IM_COL32(255, 80, 80, 255), 2);
    }
  }

 private:
  std::vector<MetricSource> m_stored;
  int64_t m_db_gen = 0;
  int m_choice = 0;
  std::string m_choice_label;  // the chosen source's label
  int64_t m_followed_run = 0;  // the workbench's selected run the choice last followed
  int m_scale_choice = 0;  // 0: absolute 0..1 (when the scores are in [0, 1]), 1: this run's range
  int m_menu_layer = 0, m_menu_head = 0;
};
}  // namespace

std::unique_ptr<View> make_head_grid_view(Workbench& wb) { return std::make_unique<HeadGridView>(wb); }

}  // namespace ms::views
