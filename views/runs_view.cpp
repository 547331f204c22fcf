// Runs window: the runs in the database (filter by kind and status, progress of running ones), the
// selected run's inputs, scores, tensors and circuits, and its HTML report (Ctrl+E).
#include <imgui.h>

#include <filesystem>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "storage/compare.h"
#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class RunsView : public View {
 public:
  explicit RunsView(Workbench& wb) : View(wb, "Runs", "runs") {}

 protected:
  void default_rect(float* x, float* y, float* w, float* h) const override {
    *x = 0.75f, *y = 0.35f, *w = 0.25f, *h = 0.35f;
  }

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
    m_n_circuits = 0;
    m_n_inputs = 0;
    Database* db = m_wb.db();
    if (!db || m_wb.selected_run <= 0) return;
    if (auto s = db->get_head_scores(m_wb.selected_run)) m_scores = std::move(*s);
    if (auto t = db->list_tensors(m_wb.selected_run)) m_tensors = std::move(*t);
    if (auto c = db->get_circuits(m_wb.selected_run)) m_n_circuits = c->size();
    if (auto i = db->get_inputs(m_wb.selected_run)) m_n_inputs = i->size();
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
    float table_h = std::max(80.f, ImGui::GetContentRegionAvail().y * 0.55f);
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
    ImGui::Text("run %lld: %zu inputs, %zu metrics, %zu tensors, %zu circuits", static_cast<long long>(m_wb.selected_run),
                m_n_inputs, m_scores.size(), m_tensors.size(), m_n_circuits);
    for (const HeadScores& hs : m_scores) {
      // The metric's top head, as a quick look; the Head grid shows them all.
      int bl = -1, bh = -1;
      double best = -INFINITY;
      for (int l = 0; l < hs.n_layers; ++l)
        for (int h = 0; h < hs.n_heads; ++h)
          if (!std::isnan(hs.at(l, h)) && hs.at(l, h) > best) best = hs.at(l, h), bl = l, bh = h;
      ImGui::BulletText("%s: top head L%d H%d = %.3f", hs.metric.c_str(), bl, bh, best);
    }
    for (const TensorInfo& t : m_tensors) {
      std::string shape;
      for (int64_t d : t.shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
      ImGui::BulletText("tensor %s [%s] %s", t.name.c_str(), shape.c_str(), t.dtype.c_str());
    }
    draw_compare();
  }

  // Compare the selected run with another, metric by metric (storage/compare.h).
  void draw_compare() {
    ImGui::Separator();
    // A comparison belongs to the run it was made for: selecting another run drops it.
    if (m_cmp_for != m_wb.selected_run) {
      m_cmp.reset();
      m_cmp_error.clear();
      m_cmp_for = m_wb.selected_run;
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
    if (ImGui::Button("Compare")) {
      m_cmp.reset();
      m_cmp_error.clear();
      if (Database* db = m_wb.db()) {
        Result<RunComparison> c = compare_runs(*db, m_wb.selected_run, m_other, CompareOptions{"", m_across_models});
        if (c) m_cmp = std::make_unique<RunComparison>(std::move(*c));
        else m_cmp_error = c.error().message;
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
  size_t m_n_circuits = 0, m_n_inputs = 0;
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
