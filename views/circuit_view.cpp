// Circuit window: a stored circuit as a layered graph (embeddings left, logits right, one column
// per layer, heads and MLPs as nodes, edge width by |score|), a threshold slider hiding weak edges,
// and a click on a head node opening its attention.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class CircuitView : public View {
 public:
  explicit CircuitView(Workbench& wb) : View(wb, "Circuit", "circuit") {}

 protected:
  void default_rect(float* x, float* y, float* w, float* h) const override {
    *x = 0.75f, *y = 0.7f, *w = 0.25f, *h = 0.3f;
  }

  void refresh() {
    m_runs.clear();
    Database* db = m_wb.db();
    if (!db) return;
    if (auto r = db->list_runs())
      for (const RunSummary& s : *r)
        if (s.n_circuits > 0) m_runs.push_back(s.run.id);
    if (m_run == 0 && !m_runs.empty()) m_run = m_runs.front();
    m_loaded_run = -1;
  }

  void draw_content() override {
    if (m_db_gen != m_wb.db_generation()) {
      m_db_gen = m_wb.db_generation();
      refresh();
      if (m_wb.selected_run > 0 && std::count(m_runs.begin(), m_runs.end(), m_wb.selected_run)) m_run = m_wb.selected_run;
    }
    if (m_runs.empty()) {
      ImGui::TextDisabled("no run in the database holds a circuit");
      return;
    }
    ImGui::SetNextItemWidth(120);
    if (ImGui::BeginCombo("run", ("run " + std::to_string(m_run)).c_str())) {
      for (int64_t id : m_runs)
        if (ImGui::Selectable(("run " + std::to_string(id)).c_str(), id == m_run)) m_run = id;
      ImGui::EndCombo();
    }
    if (m_loaded_run != m_run) {
      m_loaded_run = m_run;
      m_circuits.clear();
      m_index = 0;
      if (Database* db = m_wb.db())
        if (auto c = db->get_circuits(m_run)) m_circuits = std::move(*c);
    }
    if (m_circuits.empty()) return;
    ImGui::SameLine();
    ImGui::SetNextItemWidth(140);
    if (ImGui::BeginCombo("circuit", m_circuits[m_index].name.c_str())) {
      for (size_t i = 0; i < m_circuits.size(); ++i)
        if (ImGui::Selectable(m_circuits[i].name.c_str(), i == m_index)) m_index = i;
      ImGui::EndCombo();
    }
    const Circuit& c = m_circuits[m_index];
    double max_edge = 1e-12;
    for (const auto& e : c.edges) max_edge = std::max(max_edge, std::fabs(e.score));
    ImGui::SameLine();
    ImGui::SetNextItemWidth(160);
    ImGui::SliderFloat("threshold", &m_threshold, 0.f, 1.f, "%.2f of max");
    draw_graph(c, max_edge);
  }

  void draw_graph(const Circuit& c, double max_edge) {
    // Columns: layer -1 (embed) .. max layer (logits at n_layers); nodes stacked in each column.
    std::map<int, std::vector<int>> cols;
    for (size_t i = 0; i < c.nodes.size(); ++i) cols[c.nodes[i].layer].push_back(static_cast<int>(i));
    ImVec2 avail = ImGui::GetContentRegionAvail();
    ImVec2 p = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("##graph", ImVec2(std::max(avail.x, 50.f), std::max(avail.y, 50.f)));
    bool hovered = ImGui::IsItemHovered();
    std::vector<ImVec2> pos(c.nodes.size());
    int ci = 0;
    const float margin = 40;
    std::map<int, int> column_of;  // layer -> column index
    for (auto& [layer, ids] : cols) column_of[layer] = static_cast<int>(column_of.size());
    for (auto& [layer, ids] : cols) {
      float x = p.x + margin + (cols.size() > 1 ? ci * (avail.x - 2 * margin) / (cols.size() - 1) : avail.x / 2 - margin);
      for (size_t k = 0; k < ids.size(); ++k)
        pos[ids[k]] = ImVec2(x, p.y + (k + 1) * avail.y / (ids.size() + 1));
      ++ci;
    }
    ImDrawList* dl = ImGui::GetWindowDrawList();
    for (const auto& e : c.edges) {
      double w = std::fabs(e.score) / max_edge;
      if (w < m_threshold || e.src < 0 || e.dst < 0 || e.src >= int(pos.size()) || e.dst >= int(pos.size())) continue;
      ImU32 col = e.score >= 0 ? IM_COL32(90, 150, 255, 200) : IM_COL32(255, 110, 90, 200);
      ImVec2 a = pos[e.src], b = pos[e.dst];
      // Edges that skip columns bow upwards, so they do not hide the edges between neighbours.
      int span = std::abs(column_of[c.nodes[e.dst].layer] - column_of[c.nodes[e.src].layer]);
      float bow = span > 1 ? -(span - 1) * 0.12f * avail.y : 0.f;
      dl->AddBezierCubic(a, ImVec2(a.x + (b.x - a.x) / 3, a.y + bow), ImVec2(b.x - (b.x - a.x) / 3, b.y + bow), b, col,
                         float(1 + 6 * w));
    }
    const float r = 13;
    for (size_t i = 0; i < c.nodes.size(); ++i) {
      const CircuitNode& n = c.nodes[i];
      ImU32 fill = n.kind == "head" ? IM_COL32(60, 110, 70, 255) : n.kind == "mlp" ? IM_COL32(110, 80, 50, 255) : IM_COL32(70, 70, 90, 255);
      bool selected = n.kind == "head" && n.layer == m_wb.layer && n.head == m_wb.head;
      dl->AddCircleFilled(pos[i], r, fill);
      dl->AddCircle(pos[i], r, selected ? IM_COL32(255, 80, 80, 255) : IM_COL32(200, 200, 200, 255), 0, selected ? 3.f : 1.f);
      ImVec2 ts = ImGui::CalcTextSize(n.name.c_str());
      dl->AddText(ImVec2(pos[i].x - ts.x / 2, pos[i].y + r + 2), IM_COL32(230, 230, 230, 255), n.name.c_str());
      ImVec2 m = ImGui::GetIO().MousePos;
      if (hovered && (m.x - pos[i].x) * (m.x - pos[i].x) + (m.y - pos[i].y) * (m.y - pos[i].y) < r * r) {
        ImGui::SetTooltip("%s (%s)  score %.4f%s", n.name.c_str(), n.kind.c_str(), n.score,
                          n.kind == "head" ? "\nclick: open its attention" : "");
        if (n.kind == "head" && ImGui::IsMouseClicked(ImGuiMouseButton_Left)) {
          m_wb.select_head(n.layer, n.head);
          m_wb.focus_window = "Attention";
        }
      }
    }
  }

 private:
  std::vector<int64_t> m_runs;
  int64_t m_run = 0, m_loaded_run = -1, m_db_gen = 0;
  std::vector<Circuit> m_circuits;
  size_t m_index = 0;
  float m_threshold = 0.f;
};
}  // namespace

std::unique_ptr<View> make_circuit_view(Workbench& wb) { return std::make_unique<CircuitView>(wb); }

}  // namespace ms::views
