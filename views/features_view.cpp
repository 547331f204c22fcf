// Features window: an SAE on the open model. The prompt's tokens with their most active features
// (core/features/sae_dashboard.h prompt_top_features, computed with the forward pass); a feature's
// card from a stored `sae features` run of the same SAE (density, histogram, logit effects, top
// contexts); a steering slider that re-runs the prompt with the feature's activation raised or
// lowered at every position (core/features/sae_splice.h steer_feature_hook), whose predictions the
// Prompt window shows next to the original ones.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/base/colormap.h"
#include "core/tokenizer/token_label.h"
#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {

bool same_path(const std::string& a, const std::string& b) {
  std::error_code e1, e2;
  auto x = std::filesystem::weakly_canonical(a, e1), y = std::filesystem::weakly_canonical(b, e2);
  return !e1 && !e2 ? x == y : a == b;
}

class FeaturesView : public View {
 public:
  explicit FeaturesView(Workbench& wb) : View(wb, "Features", "features") {}

 protected:
  void draw_content() override {
    if (!m_wb.model()) {
      ImGui::TextDisabled("open a model first");
      return;
    }
    if (m_path.empty() && !m_wb.sae_path.empty()) m_path = m_wb.sae_path;
    ImGui::SetNextItemWidth(-70);
    bool enter = ImGui::InputTextWithHint("##sae", "SAE folder (SAELens) or params.npz", &m_path, ImGuiInputTextFlags_EnterReturnsTrue);
    ImGui::SameLine();
    if (ImGui::Button("Load") || enter) {
      m_card_for = -2;
      m_wb.load_sae(m_path);
    }
    const auto& sae = m_wb.sae;
    if (!sae) {
      ImGui::TextDisabled("no SAE loaded");
      return;
    }
    ImGui::Text("%s at %s: %lld features", sae_arch_name(sae->cfg.arch), sae->cfg.hook_name.c_str(),
                static_cast<long long>(sae->cfg.d_sae));
    const auto& f = m_wb.forward();
    if (!f || f->features.size() != f->tokens.size()) {
      ImGui::TextDisabled(m_wb.forward_pending() ? "running..." : "no forward pass with this SAE yet");
      return;
    }
    if (ImGui::BeginTable("tokfeat", 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_ScrollY,
                          ImVec2(0, ImGui::GetContentRegionAvail().y * 0.4f))) {
      ImGui::TableSetupColumn("token", ImGuiTableColumnFlags_WidthFixed, 110);
      ImGui::TableSetupColumn("top features (click one)");
      ImGui::TableHeadersRow();
      for (size_t t = 0; t < f->tokens.size(); ++t) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(f->tokens[t].c_str());
        ImGui::TableNextColumn();
        if (f->features[t].empty()) ImGui::TextDisabled("none active");
        for (size_t i = 0; i < f->features[t].size(); ++i) {
          const auto& [feat, act] = f->features[t][i];
          char buf[48];
          std::snprintf(buf, sizeof buf, "f%lld %.2f##%zu_%zu", static_cast<long long>(feat), act, t, i);
          if (i) ImGui::SameLine();
          if (ImGui::SmallButton(buf)) m_feature = feat;
        }
      }
      ImGui::EndTable();
    }
    ImGui::InputScalar("feature", ImGuiDataType_S64, &m_feature);
    m_feature = std::clamp<int64_t>(m_feature, 0, sae->cfg.d_sae - 1);
    // Steering: the slider's value is added to the feature's activation at every position when
    // released; "off" removes it. The Prompt window shows the predictions with and without.
    ImGui::SetNextItemWidth(200);
    ImGui::SliderFloat("steer (added activation)", &m_steer, -20.f, 20.f, "%.2f");
    if (ImGui::IsItemDeactivatedAfterEdit()) {
      m_wb.steer_feature = m_feature;
      m_wb.steer_value = m_steer;
      m_wb.run_prompt();
    }
    ImGui::SameLine();
    if (ImGui::SmallButton("off")) {
      m_steer = 0;
      m_wb.steer_feature = -1;
      m_wb.run_prompt();
    }
    if (m_wb.steer_feature >= 0)
      ImGui::TextDisabled("steering feature %lld by %+.2f (Prompt window: predictions with the intervention)",
                          static_cast<long long>(m_wb.steer_feature), m_wb.steer_value);
    ImGui::Separator();
    draw_card(*sae);
  }

  // The card of m_feature from the newest stored `sae features` run of this SAE and model.
  void draw_card(const Sae& sae) {
    Database* db = m_wb.db();
    if (!db) return;
    if (m_card_for != m_feature || m_card_gen != m_wb.db_generation()) {
      m_card_for = m_feature;
      m_card_gen = m_wb.db_generation();
      m_card.reset();
      m_card_run = 0;
      if (auto runs = db->list_runs())
        for (const RunSummary& s : *runs) {  // newest first
          if (s.run.spec.kind != "sae-features" || s.run.status != RunStatus::kDone || !m_wb.is_open_model(s.model_path)) continue;
          nlohmann::json p = nlohmann::json::parse(s.run.spec.params_json, nullptr, false);
          if (!p.is_object() || !p.contains("sae") || !p["sae"].is_string() || !same_path(p["sae"].get<std::string>(), sae.cfg.source))
            continue;
          auto cards = db->get_feature_cards(s.run.id, {m_feature});
          if (cards && !cards->empty()) {
            m_card = std::make_unique<FeatureCard>(cards->front());
            m_card_run = s.run.id;
            break;
          }
        }
    }
    if (!m_card) {
      ImGui::TextWrapped("feature %lld: no stored card for this SAE on this model. `mechscope sae features --model M --sae %s "
                         "--prompts FILE` computes its dashboard.",
                         static_cast<long long>(m_feature), sae.cfg.source.c_str());
      return;
    }
    const FeatureCard& c = *m_card;
    ImGui::Text("feature %lld (run %lld): density %.3g (log10 %.2f), max %.3g over %lld tokens", static_cast<long long>(c.feature),
                static_cast<long long>(m_card_run), c.density(), c.log10_density(), c.max_act, static_cast<long long>(c.n_tokens));
    if (!c.histogram.empty()) {
      // log10(1 + count) per bin, so the tail next to a crowded first bin stays visible
      std::vector<double> h;
      for (int64_t n : c.histogram) h.push_back(std::log10(1.0 + static_cast<double>(n)));
      const double top = std::max(*std::max_element(h.begin(), h.end()), 1e-9);
      ImDrawList* hd = ImGui::GetWindowDrawList();
      ImVec2 p0 = ImGui::GetCursorScreenPos();
      const float w = std::max(100.f, ImGui::GetContentRegionAvail().x), hh = 56.f, bw = w / static_cast<float>(h.size());
      hd->AddRectFilled(p0, ImVec2(p0.x + w, p0.y + hh), IM_COL32(35, 40, 55, 255));
      for (size_t b = 0; b < h.size(); ++b) {
        float bh = static_cast<float>(h[b] / top) * (hh - 4);
        hd->AddRectFilled(ImVec2(p0.x + b * bw, p0.y + hh - bh), ImVec2(p0.x + (b + 1) * bw - 1, p0.y + hh), IM_COL32(230, 150, 50, 255));
      }
      ImGui::Dummy(ImVec2(w, hh));
      ImGui::TextDisabled("firing activations 0 .. %.3g, %zu bins (bar height: log10(1 + count))", c.hist_max, h.size());
    }
    auto effects = [](const char* title, const std::vector<LogitEffect>& v) {
      std::string s = title;
      for (size_t i = 0; i < v.size() && i < 8; ++i) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " %+.2f", v[i].value);
        s += "  " + token_display(v[i].token) + buf;
      }
      ImGui::TextWrapped("%s", s.c_str());
    };
    effects("promotes:", c.top_logits);
    effects("suppresses:", c.bottom_logits);
    // Top contexts: each token's background by the feature's activation there (0 .. max_act).
    ImDrawList* dl = ImGui::GetWindowDrawList();
    for (size_t e = 0; e < c.examples.size() && e < 10; ++e) {
      const FeatureExample& ex = c.examples[e];
      ImGui::Text("%.2f", ex.activation);
      for (size_t i = 0; i < ex.tokens.size(); ++i) {
        ImGui::SameLine(0, 2);
        std::string t = token_display(ex.tokens[i]);
        ImVec2 p = ImGui::GetCursorScreenPos(), sz = ImGui::CalcTextSize(t.c_str());
        float a = c.max_act > 0 && i < ex.acts.size() ? std::clamp(ex.acts[i] / c.max_act, 0.f, 1.f) : 0.f;
        dl->AddRectFilled(p, ImVec2(p.x + sz.x + 2, p.y + sz.y), IM_COL32(230, 120, 40, static_cast<int>(a * 220)));
        ImGui::TextUnformatted(t.c_str());
      }
    }
  }

 private:
  std::string m_path;
  int64_t m_feature = 0;
  float m_steer = 0;
  int64_t m_card_for = -2, m_card_gen = -1, m_card_run = 0;
  std::unique_ptr<FeatureCard> m_card;
};

}  // namespace

std::unique_ptr<View> make_features_view(Workbench& wb) { return std::make_unique<FeaturesView>(wb); }

}  // namespace ms::views
