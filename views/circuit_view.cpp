// Circuit window: a stored circuit as a layered graph (embeddings left, logits right, one column
// per layer labelled above it, heads and MLPs as nodes, edges into a head drawn to its q, k or v
// port, edge width by |score|), a legend, the circuit's faithfulness when `--evaluate` stored it,
// a threshold slider hiding weak edges, and a click on a head node opening its attention.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "core/base/json_input.h"

#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class CircuitView : public View {
 public:
  explicit CircuitView(Workbench& wb) : View(wb, "Circuit", "circuit") {}

 protected:
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

  // Colours shared by the graph and its legend.
  static constexpr ImU32 kPos = IM_COL32(90, 150, 255, 255), kNeg = IM_COL32(255, 110, 90, 255);
  static constexpr ImU32 kHead = IM_COL32(60, 110, 70, 255), kMlp = IM_COL32(110, 80, 50, 255),
                         kOther = IM_COL32(70, 70, 90, 255);
  static ImU32 with_alpha(ImU32 c, int a) { return (c & ~IM_COL32_A_MASK) | (static_cast<ImU32>(a) << IM_COL32_A_SHIFT); }
  static ImU32 node_fill(const std::string& kind) { return kind == "head" ? kHead : kind == "mlp" ? kMlp : kOther; }

  // The faithfulness `circuit --evaluate` stores in the circuit's meta, or why there is none.
  static std::string faithfulness_text(const nlohmann::json& meta) {
    if (!meta.is_object() || !meta.contains("faithfulness") || !meta["faithfulness"].is_number())
      return "faithfulness: not evaluated (`mechscope circuit --evaluate` stores it)";
    char buf[200];
    double f = meta["faithfulness"].get<double>();
    std::snprintf(buf, sizeof buf, "faithfulness %.3f (circuit metric / clean metric)", f);
    std::string s = buf;
    if (meta.contains("faithfulness_normalized") && meta["faithfulness_normalized"].is_number()) {
      std::snprintf(buf, sizeof buf, ", normalised %.3f", meta["faithfulness_normalized"].get<double>());
      s += buf;
    }
    if (meta.contains("metric_circuit") && meta.contains("metric_clean") && meta["metric_circuit"].is_number() &&
        meta["metric_clean"].is_number()) {
      std::snprintf(buf, sizeof buf, "; metric %.4g with the circuit, %.4g clean", meta["metric_circuit"].get<double>(),
                    meta["metric_clean"].get<double>());
      s += buf;
    }
    return s;
  }

  // One row: edge signs, what width means, node kinds and the q/k/v ports.
  void draw_legend(double max_edge) {
    ImVec2 p = ImGui::GetCursorScreenPos();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const float th = ImGui::GetTextLineHeight(), y = p.y + th / 2;
    float x = p.x;
    const ImU32 text = IM_COL32(210, 210, 210, 255);
    auto label = [&](const char* s) {
      dl->AddText(ImVec2(x, p.y), text, s);
      x += ImGui::CalcTextSize(s).x + 12;
    };
    dl->AddLine(ImVec2(x, y), ImVec2(x + 22, y), kPos, 4), x += 26;
    label("positive");
    dl->AddLine(ImVec2(x, y), ImVec2(x + 22, y), kNeg, 4), x += 26;
    label("negative");
    dl->AddLine(ImVec2(x, y), ImVec2(x + 22, y), IM_COL32(200, 200, 200, 255), 1), x += 24;
    dl->AddLine(ImVec2(x, y), ImVec2(x + 22, y), IM_COL32(200, 200, 200, 255), 7), x += 26;
    char buf[80];
    std::snprintf(buf, sizeof buf, "width: |score| up to %.3g", max_edge);
    label(buf);
    for (auto [kind, col] : {std::pair<const char*, ImU32>{"head", kHead}, {"mlp", kMlp}, {"embed/logits", kOther}}) {
      dl->AddCircleFilled(ImVec2(x + 7, y), 7, col);
      dl->AddCircle(ImVec2(x + 7, y), 7, IM_COL32(200, 200, 200, 255));
      x += 18;
      label(kind);
    }
    dl->AddCircleFilled(ImVec2(x + 4, y), 4, IM_COL32(235, 235, 235, 255)), x += 12;
    label("q k v: a head's input ports");
    m_legend[0] = p.x, m_legend[1] = p.y, m_legend[2] = x - p.x, m_legend[3] = th;
    ImGui::Dummy(ImVec2(x - p.x, th + 2));
  }

  void draw_graph(const Circuit& c, double max_edge) {
    nlohmann::json meta = parse_json_or_discarded(c.meta_json);
    m_faithfulness = faithfulness_text(meta);
    ImGui::TextUnformatted(m_faithfulness.c_str());
    draw_legend(max_edge);
    // Each edge's target inputs ("a1.3<q>|a1.3<k>") and their scores, when the circuit has them.
    std::vector<std::vector<std::pair<char, double>>> ports(c.edges.size());
    if (meta.contains("edge_targets") && meta["edge_targets"].is_array() && meta["edge_targets"].size() == c.edges.size()) {
      const nlohmann::json& ts = meta["edge_targets"];
      const nlohmann::json* sc = meta.contains("edge_target_scores") ? &meta["edge_target_scores"] : nullptr;
      for (size_t i = 0; i < c.edges.size(); ++i) {
        if (!ts[i].is_string()) continue;
        std::string t = ts[i].get<std::string>();
        size_t k = 0;
        for (size_t start = 0; start <= t.size(); ++k) {
          size_t end = std::min(t.find('|', start), t.size());
          std::string part = t.substr(start, end - start);
          size_t lt = part.find('<');
          double score = c.edges[i].score;
          if (sc && sc->is_array() && (*sc)[i].is_array() && k < (*sc)[i].size() && (*sc)[i][k].is_number())
            score = (*sc)[i][k].get<double>();
          if (lt != std::string::npos && lt + 1 < part.size()) ports[i].push_back({part[lt + 1], score});
          start = end + 1;
        }
      }
    }
    // Columns in the order of the forward pass: embed (layer -1), then per layer its heads and its
    // MLP (the MLP reads the heads' output, so it gets a column of its own after them), logits
    // (n_layers); nodes stacked in each column below a band kept free for the edges that skip
    // columns. Every edge then runs strictly left to right.
    auto col_key = [&](int node) { return 2 * c.nodes[node].layer + (c.nodes[node].kind == "mlp" ? 1 : 0); };
    std::map<int, std::vector<int>> cols;
    for (size_t i = 0; i < c.nodes.size(); ++i) cols[col_key(static_cast<int>(i))].push_back(static_cast<int>(i));
    ImVec2 avail = ImGui::GetContentRegionAvail();
    avail.x = std::max(avail.x, 50.f), avail.y = std::max(avail.y, 80.f);
    ImVec2 p = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("##graph", avail);
    bool hovered = ImGui::IsItemHovered();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const float margin = 44, r = 13, th = ImGui::GetTextLineHeight();
    const float label_h = th + 4, band = std::min(0.22f * avail.y, 90.f);
    const float top = p.y + label_h + band, height = avail.y - label_h - band;
    std::vector<ImVec2> pos(c.nodes.size());
    std::map<int, int> column_of;  // column key -> column index
    std::map<int, float> column_x, column_top;  // column -> x, the y of its topmost node
    for (auto& [key, ids] : cols) column_of[key] = static_cast<int>(column_of.size());
    for (auto& [key, ids] : cols) {
      int ci = column_of[key];
      float x = p.x + margin + (cols.size() > 1 ? ci * (avail.x - 2 * margin) / (cols.size() - 1) : avail.x / 2 - margin);
      column_x[ci] = x;
      for (size_t k = 0; k < ids.size(); ++k) pos[ids[k]] = ImVec2(x, top + (k + 1) * height / (ids.size() + 1));
      column_top[ci] = top + height / (ids.size() + 1);
      // The column's layer above it.
      const CircuitNode& n0 = c.nodes[ids[0]];
      const int layer = n0.layer;
      std::string name = layer < 0 ? "embed" : n0.kind == "logits" ? "logits"
                         : "L" + std::to_string(layer) + (n0.kind == "mlp" ? " mlp" : " heads");
      ImVec2 ts = ImGui::CalcTextSize(name.c_str());
      dl->AddText(ImVec2(x - ts.x / 2, p.y), IM_COL32(200, 200, 200, 255), name.c_str());
      dl->AddLine(ImVec2(x, p.y + label_h), ImVec2(x, p.y + avail.y), IM_COL32(255, 255, 255, 18));
    }
    // A head's q, k and v ports on its left side.
    auto port_pos = [&](int node, char port) {
      ImVec2 q = pos[node];
      float dy = port == 'q' ? -0.62f * r : port == 'k' ? 0.f : 0.62f * r;
      return ImVec2(q.x - r * 0.8f, q.y + dy);
    };
    // Edges first, nodes on top with an opaque fill. An edge to the next column is a gentle S; one
    // that skips columns is a cubic bezier whose control points are raised until the curve passes
    // above the topmost node of every column between its ends (into the band kept free above them),
    // so it never runs through a node it does not touch.
    auto draw_edge = [&](ImVec2 a, ImVec2 b, int ca, int cb, double score) {
      double w = std::fabs(score) / max_edge;
      ImU32 col = with_alpha(score >= 0 ? kPos : kNeg, 200);
      float y_ctrl = 0;
      bool bowed = std::abs(cb - ca) > 1 && b.x - a.x > 1;
      if (bowed) {
        // Control points at x one and two thirds along: x(t) is linear in t, and
        // y(t) = (1-t)^3 a.y + t^3 b.y + (1 - (1-t)^3 - t^3) y_ctrl must stay above each column's clearance.
        y_ctrl = std::min(a.y, b.y);
        for (int k = std::min(ca, cb) + 1; k < std::max(ca, cb); ++k) {
          float t = std::clamp((column_x[k] - a.x) / (b.x - a.x), 0.05f, 0.95f);
          float u = 1 - t, inner = 1 - u * u * u - t * t * t;
          float clear = column_top[k] - r - 8 - 3.f * (std::abs(cb - ca) - 2);  // longer spans fly higher
          y_ctrl = std::min(y_ctrl, (clear - u * u * u * a.y - t * t * t * b.y) / inner);
        }
        y_ctrl = std::max(y_ctrl, p.y + label_h - band / 3);  // the peak stays below the layer labels
      }
      ImVec2 c1(a.x + (b.x - a.x) / 3, bowed ? y_ctrl : a.y), c2(b.x - (b.x - a.x) / 3, bowed ? y_ctrl : b.y);
      dl->AddBezierCubic(a, c1, c2, b, col, float(1 + 6 * w));
    };
    for (size_t i = 0; i < c.edges.size(); ++i) {
      const CircuitEdge& e = c.edges[i];
      if (e.src < 0 || e.dst < 0 || e.src >= int(pos.size()) || e.dst >= int(pos.size())) continue;
      if (std::fabs(e.score) / max_edge < m_threshold) continue;
      int ca = column_of[col_key(e.src)], cb = column_of[col_key(e.dst)];
      ImVec2 a(pos[e.src].x + r, pos[e.src].y);
      if (c.nodes[e.dst].kind == "head" && !ports[i].empty()) {
        for (auto [port, score] : ports[i]) draw_edge(a, port_pos(e.dst, port), ca, cb, score);
      } else {
        draw_edge(a, ImVec2(pos[e.dst].x - r, pos[e.dst].y), ca, cb, e.score);
      }
    }
    for (size_t i = 0; i < c.nodes.size(); ++i) {
      const CircuitNode& n = c.nodes[i];
      bool selected = n.kind == "head" && n.layer == m_wb.layer && n.head == m_wb.head;
      dl->AddCircleFilled(pos[i], r, node_fill(n.kind));
      dl->AddCircle(pos[i], r, selected ? IM_COL32(255, 80, 80, 255) : IM_COL32(200, 200, 200, 255), 0, selected ? 3.f : 1.f);
      if (n.kind == "head")
        for (char port : {'q', 'k', 'v'}) {
          ImVec2 pp = port_pos(static_cast<int>(i), port);
          dl->AddCircleFilled(pp, 3.5f, IM_COL32(235, 235, 235, 255));
          char s[2] = {port, 0};
          dl->AddText(ImVec2(pp.x - 11, pp.y - th / 2), IM_COL32(235, 235, 235, 200), s);
        }
      // The name below the node, on an opaque background so edges do not cross the text.
      ImVec2 ts = ImGui::CalcTextSize(n.name.c_str());
      ImVec2 t0(pos[i].x - ts.x / 2, pos[i].y + r + 2);
      dl->AddRectFilled(ImVec2(t0.x - 2, t0.y), ImVec2(t0.x + ts.x + 2, t0.y + ts.y), IM_COL32(25, 25, 30, 235), 3);
      dl->AddText(t0, IM_COL32(230, 230, 230, 255), n.name.c_str());
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
    m_n_nodes = static_cast<int>(c.nodes.size());
  }

 public:
  std::string layout_report() const override {
    char buf[160];
    std::snprintf(buf, sizeof buf, "legend: x=%.1f y=%.1f w=%.1f h=%.1f\nnodes: %d\n", m_legend[0], m_legend[1],
                  m_legend[2], m_legend[3], m_n_nodes);
    return buf + m_faithfulness + "\n";
  }

 private:
  std::vector<int64_t> m_runs;
  int64_t m_run = 0, m_loaded_run = -1, m_db_gen = 0;
  std::vector<Circuit> m_circuits;
  size_t m_index = 0;
  float m_threshold = 0.f;
  float m_legend[4] = {0, 0, 0, 0};  // x, y, w, h drawn last frame
  int m_n_nodes = 0;
  std::string m_faithfulness;
};
}  // namespace

std::unique_ptr<View> make_circuit_view(Workbench& wb) { return std::make_unique<CircuitView>(wb); }

}  // namespace ms::views
