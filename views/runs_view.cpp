// Runs window: the runs in the database (filter by kind and status, progress of running ones), the
// selected run as `mechscope runs show` prints it (report/run_show.h) with its reproducing command
// to copy, its stored tensors drawn (2-D as grids, 1-D as curves), a comparison with another run
// (A, B and A - B grids), and its HTML report (Ctrl+E).
#include <imgui.h>

#include <filesystem>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "report/run_show.h"
#include "storage/compare.h"
#include "views/grid_plot.h"
#include "views/run_figures.h"
#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class RunsView : public View {
 public:
  explicit RunsView(Workbench& wb) : View(wb, "Runs", "runs") {}

 protected:
  void refresh() {
    m_refreshed = ImGui::GetTime();
    m_runs.clear();
    m_details_for = -1;
    m_n_items.clear();
    if (Database* db = m_wb.db()) {
      auto r = db->list_runs();
      if (r) m_runs = std::move(*r);
      // Item runs (a retrieval grid's cells, a batch's items: an "item-of" link) are grouped under
      // their parent. Links are written with a run's results and never change, so a done run's
      // parent is looked up once.
      for (const RunSummary& s : m_runs) {
        if (!m_parent_of.count(s.run.id)) {
          int64_t parent = 0;
          if (auto links = db->get_links(s.run.id))
            for (const RunLink& l : *links)
              if (l.relation == "item-of" && l.run_id == s.run.id) parent = l.source_run_id;
          if (s.run.status != RunStatus::kRunning && s.run.status != RunStatus::kQueued) m_parent_of[s.run.id] = parent;
          else if (parent) m_parent_of[s.run.id] = parent;
        }
        auto it = m_parent_of.find(s.run.id);
        if (it != m_parent_of.end() && it->second > 0) ++m_n_items[it->second];
      }
    }
  }

  void load_details() {
    m_details_for = m_wb.selected_run;
    m_scores.clear();
    m_tensors.clear();
    m_figures.clear();
    m_fields.clear();
    m_inputs.clear();
    m_fields_error.clear();
    m_command.clear();
    Database* db = m_wb.db();
    if (!db || m_wb.selected_run <= 0) return;
    if (auto s = db->get_head_scores(m_wb.selected_run)) m_scores = std::move(*s);
    if (auto t = db->list_tensors(m_wb.selected_run)) m_tensors = std::move(*t);
    if (auto i = db->get_inputs(m_wb.selected_run)) m_inputs = std::move(*i);
    if (auto f = report::run_show_fields(*db, m_wb.selected_run)) m_fields = std::move(*f);
    else m_fields_error = f.error().message;
    if (auto r = db->get_run(m_wb.selected_run)) {
      m_command = r->spec.command;
      m_header = "run " + std::to_string(r->id) + ": " + r->spec.kind + " (" + run_status_name(r->status) + ")";
    }
  }

  void draw_content() override {
    if (m_db_gen != m_wb.db_generation()) {
      m_db_gen = m_wb.db_generation();
      refresh();
    }
    bool running = false;  // running runs (this or another process): progress refreshes every second
    for (const auto& r : m_runs) running |= r.run.status == RunStatus::kRunning;
    if (ImGui::SmallButton("refresh") || (running && ImGui::GetTime() - m_refreshed > 1.0)) refresh();
    ImGui::SameLine();
    ImGui::SetNextItemWidth(100);
    ImGui::InputTextWithHint("##kind", "kind filter", &m_kind);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(100);
    ImGui::Combo("##status", &m_status, "any status\0queued\0running\0done\0failed\0cancelled\0");
    ImGui::SameLine();
    ImGui::Checkbox("item runs", &m_show_items);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("also list the runs that are items of another run (grid cells, batch items)");
    ImGui::SameLine();
    if (ImGui::SmallButton("Export report (Ctrl+E)")) m_wb.export_run(m_wb.selected_run);

    std::vector<const RunSummary*> rows;
    for (const auto& r : m_runs) {
      if (!m_kind.empty() && r.run.spec.kind.find(m_kind) == std::string::npos) continue;
      if (m_status > 0 && static_cast<int>(r.run.status) != m_status - 1) continue;
      auto parent = m_parent_of.find(r.run.id);
      if (!m_show_items && parent != m_parent_of.end() && parent->second > 0 && m_kind.empty()) continue;
      rows.push_back(&r);
    }
    // The list takes what its rows need, at most a third of the window when a run is selected.
    float row_h = ImGui::GetTextLineHeightWithSpacing() + 2;
    float table_h = std::max(80.f, std::min((rows.size() + 1.5f) * row_h,
                                            ImGui::GetContentRegionAvail().y * (m_wb.selected_run > 0 ? 0.33f : 0.9f)));
    ImGuiTableFlags tf = ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_Resizable;
    if (ImGui::BeginTable("runs", 5, tf, ImVec2(0, table_h))) {
      ImGui::TableSetupScrollFreeze(0, 1);
      ImGui::TableSetupColumn("id");
      ImGui::TableSetupColumn("kind");
      ImGui::TableSetupColumn("status");
      ImGui::TableSetupColumn("created");
      ImGui::TableSetupColumn("model");
      ImGui::TableHeadersRow();
      ImGuiListClipper clip;
      clip.Begin(static_cast<int>(rows.size()));
      while (clip.Step())
        for (int i = clip.DisplayStart; i < clip.DisplayEnd; ++i) {
          const RunSummary& r = *rows[i];
          ImGui::TableNextRow();
          ImGui::TableNextColumn();
          std::string id = std::to_string(r.run.id);
          if (ImGui::Selectable(id.c_str(), r.run.id == m_wb.selected_run, ImGuiSelectableFlags_SpanAllColumns))
            m_wb.selected_run = r.run.id;
          ImGui::TableNextColumn();
          auto items = m_n_items.find(r.run.id);
          auto parent = m_parent_of.find(r.run.id);
          if (items != m_n_items.end())
            ImGui::Text("%s (+%lld items)", r.run.spec.kind.c_str(), static_cast<long long>(items->second));
          else if (parent != m_parent_of.end() && parent->second > 0)
            ImGui::Text("  %s of run %lld", r.run.spec.kind.c_str(), static_cast<long long>(parent->second));
          else
            ImGui::TextUnformatted(r.run.spec.kind.c_str());
          ImGui::TableNextColumn();
          if (r.run.status == RunStatus::kRunning) ImGui::ProgressBar(static_cast<float>(r.run.progress), ImVec2(-1, 0));
          else ImGui::TextUnformatted(run_status_name(r.run.status));
          ImGui::TableNextColumn();
          ImGui::TextUnformatted(r.run.created_at.c_str());
          ImGui::TableNextColumn();
          ImGui::TextUnformatted(r.model_path.c_str());
        }
      ImGui::EndTable();
    }
    if (m_runs.empty()) ImGui::TextDisabled("no runs in %s", resolve_db_path(m_wb.db_path).c_str());
    if (m_wb.selected_run <= 0) return;
    if (m_details_for != m_wb.selected_run) load_details();
    ImGui::Separator();
    m_grids.clear();
    ImGui::BeginChild("##details");
    draw_details();
    draw_compare();
    ImGui::EndChild();
  }

  // The selected run as `mechscope runs show` prints it, its inputs, metrics and tensors.
  void draw_details() {
    ImGui::TextUnformatted(m_header.c_str());
    if (!m_command.empty()) {
      ImGui::SameLine();
      if (ImGui::SmallButton("Copy command")) ImGui::SetClipboardText(m_command.c_str());
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("copy the command that reproduces this run:\n%s", m_command.c_str());
    }
    if (!m_fields_error.empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", m_fields_error.c_str());
    if (ImGui::BeginTable("fields", 2, ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingFixedFit)) {
      ImGui::TableSetupColumn("key", ImGuiTableColumnFlags_WidthFixed);
      ImGui::TableSetupColumn("value", ImGuiTableColumnFlags_WidthStretch);
      // A key repeated many times (a grid's 48 item links) shows its first 3 and a button for the rest.
      std::map<std::string, int> count, shown;
      for (const report::RunField& f : m_fields) ++count[f.key];
      for (const report::RunField& f : m_fields) {
        int n = count[f.key], k = shown[f.key]++;
        bool folded = n > 4 && !m_unfolded.count(f.key);
        if (folded && k > 3) continue;
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextDisabled("%s", f.key.c_str());
        ImGui::TableNextColumn();
        if (folded && k == 3) {
          std::string label = "show all " + std::to_string(n) + " (" + std::to_string(n - 3) + " more)##" + f.key;
          if (ImGui::SmallButton(label.c_str())) m_unfolded.insert(f.key);
          continue;
        }
        ImGui::TextWrapped("%s", f.value.c_str());
      }
      ImGui::EndTable();
    }
    if (!m_inputs.empty() && ImGui::TreeNode("##inputs", "inputs (%zu)", m_inputs.size())) {
      ImGuiListClipper clip;
      clip.Begin(static_cast<int>(m_inputs.size()));
      while (clip.Step())
        for (int i = clip.DisplayStart; i < clip.DisplayEnd; ++i) {
          const InputRecord& in = m_inputs[i];
          std::string text = in.text.size() > 300 ? in.text.substr(0, 300) + "..." : in.text;
          ImGui::BulletText("%d: %s  (%zu tokens)", in.index, text.c_str(), in.token_ids.size());
        }
      ImGui::TreePop();
    }
    for (const HeadScores& hs : m_scores) {
      report::MetricSummary m = report::summarize_metric(hs);
      if (m.n) ImGui::BulletText("%s: top head L%d H%d = %.3f", hs.metric.c_str(), m.argmax_layer, m.argmax_head, m.max);
    }
    if (!m_tensors.empty()) {
      ImGui::Checkbox("absolute 0..1 where values are in [0, 1]", &m_absolute);
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("off: each figure on its own min..max");
    }
    int shown = 0;
    for (const TensorInfo& t : m_tensors) {
      std::string shape;
      for (int64_t d : t.shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
      // The first few floating-point tensors open by default; the rest, and integer tensors (token
      // ids, whose colours would mean nothing), on a click. Each is read when first opened.
      bool floating = t.dtype.rfind("float", 0) == 0 || t.dtype == "bfloat16";
      ImGui::SetNextItemOpen(floating && shown < 3, ImGuiCond_Once);
      shown += floating;
      if (!ImGui::TreeNode(t.name.c_str(), "tensor %s [%s] %s", t.name.c_str(), shape.c_str(), t.dtype.c_str())) continue;
      draw_tensor(t);
      ImGui::TreePop();
    }
  }

  void draw_tensor(const TensorInfo& t) {
    auto it = m_figures.find(t.name);
    if (it == m_figures.end()) {
      Figure f;
      if (Database* db = m_wb.db()) f.fig = tensor_figure(*db, m_wb.selected_run, t, &f.why);
      it = m_figures.emplace(t.name, std::move(f)).first;
    }
    const Figure& f = it->second;
    if (!f.fig) {
      ImGui::TextDisabled("(%s)", f.why.c_str());
      return;
    }
    const TensorFigure& tf = *f.fig;
    float w = std::min(ImGui::GetContentRegionAvail().x, 640.f);
    if (tf.rank == 1) {
      draw_curve(t.name.c_str(), tf.values, tf.col_title, tf.value_title, w, 90);
      return;
    }
    if (tf.row_step > 1 || tf.col_step > 1)
      ImGui::TextDisabled("block means: each cell is %d x %d values", tf.row_step, tf.col_step);
    GridSpec spec;
    spec.row_title = tf.row_title, spec.col_title = tf.col_title;
    spec.row_labels = tf.row_labels, spec.col_labels = tf.col_labels;
    spec.value_title = tf.value_title;
    bool unit = true;
    for (double v : tf.values) unit = unit && (std::isnan(v) || (v >= 0 && v <= 1));
    ColorScale scale = unit && m_absolute ? ColorScale{Colormap::kViridis, 0.0, 1.0} : color_scale_for(tf.values);
    float h = std::clamp(tf.rows * 26.f + 70, 100.f, 320.f);
    m_grids.push_back({"tensor " + t.name, draw_grid(t.name.c_str(), tf.values, tf.rows, tf.cols, scale, spec, w, h)});
  }

  // Compare the selected run with another, metric by metric (storage/compare.h).
  void draw_compare() {
    ImGui::Separator();
    // A comparison belongs to the run it was made for: selecting another run drops it.
    if (m_cmp_for != m_wb.selected_run) {
      m_cmp.reset();
      m_cmp_error.clear();
      m_cmp_for = m_wb.selected_run;
      m_grid_metric.clear();
    }
    // The partner is picked from the list (done runs other than the selected one), with its model.
    auto label = [](const RunSummary& r) {
      return "run " + std::to_string(r.run.id) + " " + r.run.spec.kind + "  [" +
             std::filesystem::path(r.model_path).filename().string() + "]";
    };
    std::string current = "pick a run to compare with";
    for (const auto& r : m_runs)
      if (r.run.id == m_other) current = label(r);
    ImGui::SetNextItemWidth(320);
    if (ImGui::BeginCombo("##other", current.c_str())) {
      for (const auto& r : m_runs) {
        if (r.run.id == m_wb.selected_run || r.run.status != RunStatus::kDone) continue;
        if (ImGui::Selectable(label(r).c_str(), r.run.id == m_other)) m_other = r.run.id;
      }
      ImGui::EndCombo();
    }
    ImGui::SameLine();
    ImGui::Checkbox("across models", &m_across_models);
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("match the heads of two different models by layer.head (only when their shapes match)");
    ImGui::SameLine();
    if (m_wb.compare_run > 0) m_other = m_wb.compare_run;  // gui --compare
    if (ImGui::Button("Compare") || m_wb.compare_run > 0) {
      m_wb.compare_run = 0;
      m_cmp.reset();
      m_cmp_error.clear();
      if (Database* db = m_wb.db()) {
        Result<RunComparison> c = compare_runs(*db, m_wb.selected_run, m_other, CompareOptions{"", m_across_models});
        if (c) m_cmp = std::make_unique<RunComparison>(std::move(*c));
        else m_cmp_error = c.error().message;
        m_grid_metric.clear();
        m_scroll_to_grids = true;  // a new comparison: bring its grids into view
      }
    }
    if (!m_cmp_error.empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", m_cmp_error.c_str());
    if (!m_cmp) return;
    ImGui::Text("run %lld vs run %lld", static_cast<long long>(m_cmp->a.id), static_cast<long long>(m_cmp->b.id));
    if (!m_cmp->note.empty()) ImGui::TextColored(ImVec4(1, 0.75f, 0.3f, 1), "%s", m_cmp->note.c_str());
    if (ImGui::BeginTable("cmp", 5, ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV)) {
      for (const char* h : {"metric", "heads", "mean |diff|", "pearson", "largest change"}) ImGui::TableSetupColumn(h);
      ImGui::TableHeadersRow();
      for (const MetricComparison& mc : m_cmp->metrics) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(mc.metric.c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%d", mc.n_common);
        ImGui::TableNextColumn();
        ImGui::Text("%.4f", mc.mean_abs_diff);
        ImGui::TableNextColumn();
        ImGui::Text("%.3f", mc.pearson);
        ImGui::TableNextColumn();
        if (!mc.heads.empty())
          ImGui::Text("L%d H%d %.3f -> %.3f", mc.heads[0].layer, mc.heads[0].head, mc.heads[0].a, mc.heads[0].b);
      }
      ImGui::EndTable();
    }
    draw_compare_grids();
  }

  // A's and B's layer x head grids of one metric on one scale, and A - B on a symmetric diverging one.
  void draw_compare_grids() {
    if (m_cmp->metrics.empty()) return;
    if (m_grid_metric.empty()) m_grid_metric = m_cmp->metrics.front().metric, m_grid_a.reset();
    ImGui::SetNextItemWidth(200);
    if (ImGui::BeginCombo("grid metric", m_grid_metric.c_str())) {
      for (const MetricComparison& mc : m_cmp->metrics)
        if (ImGui::Selectable(mc.metric.c_str(), mc.metric == m_grid_metric)) m_grid_metric = mc.metric, m_grid_a.reset();
      ImGui::EndCombo();
    }
    ImGui::SameLine();
    ImGui::Checkbox("absolute 0..1##cmp", &m_absolute);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("A and B on 0..1 when their scores are in [0, 1]; off: their joint min..max");
    Database* db = m_wb.db();
    if (!m_grid_a && db) {
      m_grid_b.reset();
      if (auto a = db->get_head_scores(m_cmp->a.id, m_grid_metric)) m_grid_a = std::move(*a);
      if (auto b = db->get_head_scores(m_cmp->b.id, m_grid_metric)) m_grid_b = std::move(*b);
    }
    if (!m_grid_a || !m_grid_b) return;
    std::optional<HeadScores> d = difference_grid(*m_grid_a, *m_grid_b);
    if (!d) {
      ImGui::TextDisabled("%s: %d x %d heads against %d x %d: no difference grid", m_grid_metric.c_str(),
                          m_grid_a->n_layers, m_grid_a->n_heads, m_grid_b->n_layers, m_grid_b->n_heads);
      return;
    }
    ColorScale ab = joint_scale(*m_grid_a, *m_grid_b, m_absolute);
    float w = std::max(160.f, (ImGui::GetContentRegionAvail().x - 16) / 3);
    float h = std::clamp(m_grid_a->n_layers * 22.f + 70, 120.f, 320.f);
    GridSpec spec;
    spec.row_title = "layer", spec.col_title = "head", spec.value_title = m_grid_metric;
    for (int l = 0; l < m_grid_a->n_layers; ++l) spec.row_labels.push_back("L" + std::to_string(l));
    for (int hh = 0; hh < m_grid_a->n_heads; ++hh) spec.col_labels.push_back("H" + std::to_string(hh));
    const int n_l = m_grid_a->n_layers, n_h = m_grid_a->n_heads;
    spec.title = "A: run " + std::to_string(m_cmp->a.id);
    m_grids.push_back({"A", draw_grid("gridA", m_grid_a->values, n_l, n_h, ab, spec, w, h)});
    ImGui::SameLine();
    spec.title = "B: run " + std::to_string(m_cmp->b.id);
    m_grids.push_back({"B", draw_grid("gridB", m_grid_b->values, n_l, n_h, ab, spec, w, h)});
    ImGui::SameLine();
    spec.title = "A - B";
    spec.value_title = m_grid_metric + " A - B";
    m_grids.push_back({"A-B", draw_grid("gridD", d->values, n_l, n_h, symmetric_scale(d->values), spec, w, h)});
    if (m_scroll_to_grids) {
      ImGui::SetScrollHereY(1.0f);
      m_scroll_to_grids = false;
    }
  }

 public:
  std::string layout_report() const override {
    std::string out;
    char buf[200];
    for (const auto& [name, g] : m_grids) {
      std::snprintf(buf, sizeof buf, "grid %s: x=%.2f y=%.2f cell_w=%.4f cell_h=%.4f rows=%d cols=%d\n", name.c_str(), g.x,
                    g.y, g.cell_w, g.cell_h, g.rows, g.cols);
      out += buf;
    }
    return out;
  }

 private:
  std::vector<RunSummary> m_runs;
  std::map<int64_t, int64_t> m_parent_of;  // run -> the run it is an item of (0: none)
  std::map<int64_t, int64_t> m_n_items;    // run -> how many item runs it has
  bool m_show_items = false;
  std::string m_kind;
  int m_status = 0;
  int64_t m_db_gen = 0, m_details_for = -1;
  std::vector<HeadScores> m_scores;
  std::vector<TensorInfo> m_tensors;
  std::vector<InputRecord> m_inputs;
  std::vector<report::RunField> m_fields;
  std::string m_fields_error, m_command, m_header;
  std::set<std::string> m_unfolded;  // repeated field keys shown in full
  struct Figure {
    std::optional<TensorFigure> fig;
    std::string why;
  };
  std::map<std::string, Figure> m_figures;  // the selected run's tensors, read when first opened
  bool m_absolute = true;
  std::vector<std::pair<std::string, GridLayout>> m_grids;  // drawn this frame
  // The comparison's grids: the metric shown and A's and B's scores of it.
  std::string m_grid_metric;
  std::optional<HeadScores> m_grid_a, m_grid_b;
  bool m_scroll_to_grids = false;
  int64_t m_other = 0;
  int64_t m_cmp_for = 0;
  bool m_across_models = false;
  double m_refreshed = 0;
  std::unique_ptr<RunComparison> m_cmp;
  std::string m_cmp_error;
};
}  // namespace

std::unique_ptr<View> make_runs_view(Workbench& wb) { return std::make_unique<RunsView>(wb); }

}  // namespace ms::views
