// Analyses window: launch an analysis with its parameters as a background task (progress bar,
// cancel button), store it as a run in the database, and list every task of the session.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "core/prompts.h"
#include "core/sinks.h"
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

  void launch_sinks() {
    auto model = m_wb.model();
    if (!model) {
      m_wb.show_error("Sinks analysis", "open a model first");
      return;
    }
    std::vector<std::vector<int32_t>> prompts;
    std::vector<std::string> texts;
    try {
      if (m_use_file) {
        Result<std::vector<PromptRecord>> r = read_prompts(m_prompts_file);
        if (!r) throw InputError(r.error().message);
        for (const auto& p : *r) {
          prompts.push_back(p.tokens.empty() ? prompt_ids(*model, p.text) : p.tokens);
          texts.push_back(p.text);
        }
      } else {
        prompts.push_back(prompt_ids(*model, m_wb.prompt));
        texts.push_back(m_wb.prompt);
      }
    } catch (const std::exception& e) {
      m_wb.show_error("Sinks analysis", e.what());
      return;
    }
    SinkOptions so;
    so.epsilon = m_epsilon;
    so.hidden_threshold = m_hidden;
    std::string db_path = resolve_db_path(m_wb.db_path);
    auto finished = m_finished;
    m_wb.tasks().start("sinks analysis (" + std::to_string(prompts.size()) + " prompts)",
                       [model, prompts, texts, so, db_path, finished](TaskContext& ctx) {
      auto db = Database::open(db_path);  // this thread's own connection
      if (!db) throw std::runtime_error(db.error().message);
      Result<int64_t> mid = (*db)->register_model(*model);
      if (!mid) throw std::runtime_error(mid.error().message);
      RunSpec spec("sinks", *mid, nlohmann::json{{"epsilon", so.epsilon}, {"hidden_threshold", "abs:" + std::to_string(so.hidden_threshold)},
                                                  {"n_prompts", prompts.size()}}.dump());
      spec.command = "mechscope gui (Analyses window)";
      Result<int64_t> run = (*db)->begin_run(spec);
      if (!run) throw std::runtime_error(run.error().message);
      SinkReport rep = analyze_sinks(*model, prompts, so, [&](int64_t done, int64_t total) {
        ctx.set_progress(double(done) / double(total));
        ctx.set_status(std::to_string(done) + " / " + std::to_string(total) + " prompts");
        (void)(*db)->set_progress(*run, double(done) / double(total));
      }, ctx.cancel_flag());
      if (ctx.cancelled()) {
        (void)(*db)->cancel_run(*run, "cancelled in the workbench after " + std::to_string(rep.n_prompts) + " prompts");
        finished->fetch_add(1);
        ctx.set_status("cancelled");
        return;
      }
      RunResults res;
      for (size_t i = 0; i < prompts.size(); ++i) {
        InputRecord in{static_cast<int>(i), texts[i], prompts[i], {}};
        for (int32_t id : prompts[i]) in.tokens.push_back(token_display(*model, id));
        res.inputs.push_back(std::move(in));
      }
      res.scores.push_back(head_scores_from_tensor("sink_rate", rep.head_sink_rate));
      res.scores.push_back(head_scores_from_tensor("alpha0", rep.head_alpha0));
      res.scores.push_back(head_scores_from_tensor("sink_mass", rep.head_sink_mass));
      res.scores.push_back(head_scores_from_tensor("hidden_sinks", rep.head_hidden_count.to(at::kDouble)));
      Status st = (*db)->finish_run(*run, res);
      if (!st) throw std::runtime_error(st.error().message);
      ctx.set_status("stored as run " + std::to_string(*run));
      finished->fetch_add(1);
    });
  }

  void draw_content() override {
    if (int n = m_finished->load(); n != m_seen) {  // a task stored a run: lists refresh
      m_seen = n;
      m_wb.db_changed();
    }
    if (ImGui::CollapsingHeader("Attention sinks", ImGuiTreeNodeFlags_DefaultOpen)) {
      ImGui::SetNextItemWidth(120);
      ImGui::InputDouble("epsilon", &m_epsilon, 0.05, 0.1, "%.2f");
      ImGui::SetNextItemWidth(120);
      ImGui::InputDouble("hidden threshold", &m_hidden, 0.05, 0.1, "%.2f");
      ImGui::Checkbox("prompts file", &m_use_file);
      if (m_use_file) {
        ImGui::SameLine();
        ImGui::SetNextItemWidth(-1);
        ImGui::InputText("##file", &m_prompts_file);
      } else {
        ImGui::SameLine();
        ImGui::TextDisabled("(the current prompt)");
      }
      if (ImGui::Button("Run sinks analysis")) launch_sinks();
    }
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
  double m_epsilon = 0.3, m_hidden = 0.1;
  bool m_use_file = false;
  std::string m_prompts_file = "resources/prompts/sink-check.jsonl";
  std::shared_ptr<std::atomic<int>> m_finished = std::make_shared<std::atomic<int>>(0);
  int m_seen = 0;
};
}  // namespace

std::unique_ptr<View> make_analysis_view(Workbench& wb) { return std::make_unique<AnalysisView>(wb); }

}  // namespace ms::views
