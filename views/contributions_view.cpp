// Contributions window: a clean / corrupted prompt pair scored per position (logit difference
// answer - wrong, or next-token loss) with and without the current ablations, and the direct logit
// attribution of every head and MLP to the answer at one position (core's DLA) as a layer x head
// grid with an MLP column; right-click a head to ablate it. Every number comes from the forward pass.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/base/colormap.h"
#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
ImU32 im_rgb(Rgb c) { return IM_COL32(c.r, c.g, c.b, 255); }
ImU32 text_on(Rgb c) { return (c.r * 3 + c.g * 6 + c.b) / 10 > 128 ? IM_COL32(0, 0, 0, 255) : IM_COL32(255, 255, 255, 255); }

class ContributionsView : public View {
 public:
  explicit ContributionsView(Workbench& wb) : View(wb, "Contributions", "contributions") {}

 protected:
  void draw_content() override {
    const auto& model = m_wb.model();
    if (!model) {
      ImGui::TextDisabled("open a model first (Model window, Ctrl+O)");
      return;
    }
    if (!m_wb.want_contributions) {  // the first time the window shows: ask for the numbers and re-run
      m_wb.want_contributions = true;
      m_wb.run_prompt();
    }
    ImGui::SetNextItemWidth(-160);
    if (ImGui::InputTextWithHint("corrupted prompt", "optional: the same prompt with the answer's cue changed",
                                 &m_wb.corrupted_prompt, ImGuiInputTextFlags_EnterReturnsTrue))
      m_wb.run_prompt();
    if (!m_wb.prompt_error().empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", m_wb.prompt_error().c_str());
    const auto& f = m_wb.forward();
    if (!f || f->contrib_pos < 0) {
      ImGui::TextDisabled(m_wb.forward_pending() ? "computing..." : "no forward pass yet");
      return;
    }
    draw_choices(*f);
    ImGui::Separator();
    draw_positions(*f);
    ImGui::Separator();
    draw_grid(*f);
  }

 private:
  // Position, answer and wrong token.
  void draw_choices(const ForwardResult& f) {
    int pos = static_cast<int>(f.contrib_pos);
    ImGui::SetNextItemWidth(160);
    if (ImGui::SliderInt("position", &pos, 0, static_cast<int>(f.n_pos) - 1)) {
      m_wb.contrib_pos = pos == f.n_pos - 1 ? -1 : pos;
      m_wb.run_prompt();
    }
    ImGui::SameLine();
    ImGui::TextDisabled("'%s'", f.tokens[static_cast<size_t>(f.contrib_pos)].c_str());
    ImGui::SameLine(0, 20);
    ImGui::SetNextItemWidth(180);
    std::string label = f.answer_token + " (" + std::to_string(f.answer) + ")" + (m_wb.answer < 0 ? ", top" : "");
    if (ImGui::BeginCombo("answer", label.c_str())) {
      if (ImGui::Selectable("the top prediction", m_wb.answer < 0)) m_wb.answer = -1, m_wb.run_prompt();
      for (const Prediction& p : f.pos_top) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%s (%d)  p %.3f", p.token.c_str(), p.id, p.prob);
        if (ImGui::Selectable(buf, m_wb.answer == p.id)) m_wb.answer = p.id, m_wb.run_prompt();
      }
      ImGui::EndCombo();
    }
    ImGui::SameLine(0, 20);
    ImGui::SetNextItemWidth(120);
    if (ImGui::InputTextWithHint("wrong", "token or #id", &m_wrong, ImGuiInputTextFlags_EnterReturnsTrue)) {
      if (m_wrong.empty()) {
        m_wb.wrong = -1;
        m_wb.run_prompt();
      } else {
        Result<int32_t> t = guard([&] { return parse_token(*m_wb.model(), m_wrong); });
        if (t) m_wb.wrong = *t, m_wb.run_prompt();
        else m_wb.show_error("Wrong token", t.error().message);
      }
    }
    ImGui::SetNextItemWidth(120);
    if (ImGui::InputTextWithHint("other answer", "token or #id", &m_answer, ImGuiInputTextFlags_EnterReturnsTrue) &&
        !m_answer.empty()) {
      Result<int32_t> t = guard([&] { return parse_token(*m_wb.model(), m_answer); });
      if (t) m_wb.answer = *t, m_wb.run_prompt();
      else m_wb.show_error("Answer token", t.error().message);
    }
    ImGui::SameLine(0, 20);
    ImGui::TextUnformatted(f.wrong < 0 ? ("metric: logit of '" + f.answer_token + "'").c_str()
                                       : ("metric: logit('" + f.answer_token + "') - logit('" + f.wrong_token + "')").c_str());
  }

  // One row per prompt (clean, corrupted, clean with the intervention), one column per position.
  void draw_positions(const ForwardResult& f) {
    ImGui::SetNextItemWidth(200);
    ImGui::Combo("per position", &m_metric, "logit difference\0next-token loss (nats)\0");
    const bool loss = m_metric == 1;
    struct Row {
      const char* name;
      const std::vector<double>* v;
      const std::vector<std::string>* tokens;
    };
    std::vector<Row> rows = {{"clean", loss ? &f.loss_clean : &f.diff_clean, &f.tokens}};
    if (!f.diff_corrupted.empty())
      rows.push_back({"corrupted", loss ? &f.loss_corrupted : &f.diff_corrupted, &f.corrupted_tokens});
    if (!f.diff_ablated.empty()) rows.push_back({"clean, intervened", loss ? &f.loss_ablated : &f.diff_ablated, &f.tokens});
    if (!f.diff_ablated.empty()) ImGui::TextColored(ImVec4(1, 0.5f, 0.5f, 1), "intervention: %s", f.intervention.c_str());
    // Dear ImGui 1.86 tables hold 64 columns: a label column and up to 63 positions around the chosen one.
    const size_t n_all = std::max(f.tokens.size(), f.corrupted_tokens.size()), kMax = 63;
    const size_t n_cols = std::min(n_all, kMax);
    const size_t first = std::min(static_cast<size_t>(std::max<int64_t>(0, f.contrib_pos - 31)), n_all - n_cols);
    if (n_cols < n_all) ImGui::TextDisabled("positions %zu to %zu of %zu (around the chosen one)", first, first + n_cols - 1, n_all);
    double m = 1e-9;
    for (const Row& r : rows)
      for (double v : *r.v)
        if (!std::isnan(v)) m = std::max(m, std::fabs(v));
    ColorScale scale{loss ? Colormap::kViridis : Colormap::kDiverging, loss ? 0.0 : -m, m};
    // Three table rows per prompt (name, numbers, tokens) and the horizontal scrollbar.
    const ImGuiStyle& st = ImGui::GetStyle();
    const float table_h = (ImGui::GetTextLineHeight() + 2 * st.CellPadding.y) * 3 * rows.size() + st.ScrollbarSize + 6;
    const ImGuiTableFlags flags = ImGuiTableFlags_ScrollX | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingFixedFit;
    if (ImGui::BeginTable("positions", static_cast<int>(n_cols) + 1, flags, ImVec2(0, table_h))) {
      ImGui::TableSetupScrollFreeze(1, 0);
      for (const Row& r : rows) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(r.name);
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextDisabled(loss ? "  loss" : "  metric");
        for (size_t t = first; t < first + n_cols; ++t) {
          ImGui::TableNextColumn();
          if (t >= r.v->size()) continue;
          double v = (*r.v)[t];
          if (std::isnan(v)) {
            ImGui::TextDisabled("-");
            continue;
          }
          Rgb c = colormap_at(scale.map, scale.normalize(v));
          ImGui::TableSetBgColor(ImGuiTableBgTarget_CellBg, im_rgb(c));
          ImGui::PushStyleColor(ImGuiCol_Text, text_on(c));
          ImGui::Text("%.2f", v);
          ImGui::PopStyleColor();
          if (ImGui::IsItemHovered())
            ImGui::SetTooltip("%s, position %zu '%s'\n%s %.4f", r.name, t, (*r.tokens)[t].c_str(), loss ? "loss" : "metric", v);
        }
        // The tokens of this prompt under its numbers.
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextDisabled("  token");
        for (size_t t = first; t < first + n_cols; ++t) {
          ImGui::TableNextColumn();
          if (t < r.tokens->size()) ImGui::TextUnformatted((*r.tokens)[t].c_str());
        }
      }
      ImGui::EndTable();
    }
    const size_t p = static_cast<size_t>(f.contrib_pos);
    if (p < f.diff_clean.size()) {
      ImGui::Text("at position %zu: clean %.4f", p, f.diff_clean[p]);
      if (p < f.diff_corrupted.size()) ImGui::SameLine(), ImGui::Text("  corrupted %.4f", f.diff_corrupted[p]);
      if (p < f.diff_ablated.size())
        ImGui::SameLine(), ImGui::TextColored(ImVec4(1, 0.5f, 0.5f, 1), "  intervened %.4f (%+.4f)", f.diff_ablated[p],
                                              f.diff_ablated[p] - f.diff_clean[p]);
    }
  }

  // Heads (layer x head) and an MLP column on one diverging scale, the colour bar right of them.
  void draw_grid(const ForwardResult& f) {
    const int L = static_cast<int>(f.n_layers), H = static_cast<int>(f.n_heads);
    if (f.dla_heads.size() != static_cast<size_t>(L * H)) return;
    double heads = 0, mlps = 0;
    for (double v : f.dla_heads) heads += v;
    for (double v : f.dla_mlp) mlps += v;
    ImGui::TextWrapped("direct contributions at position %lld to %s: embed %.3f + heads %.3f + MLPs %.3f + biases %.3f = %.3f "
                       "(the model's %.3f). Each part is divided by the final norm's scale at this position.",
                       static_cast<long long>(f.contrib_pos),
                       f.wrong < 0 ? ("the logit of '" + f.answer_token + "'").c_str() : "the logit difference",
                       f.dla_embed, heads, mlps, f.dla_bias, f.dla_embed + heads + mlps + f.dla_bias, f.dla_total);
    for (const std::string& n : f.dla_notes) ImGui::TextDisabled("%s", n.c_str());
    std::vector<double> all(f.dla_heads);
    all.insert(all.end(), f.dla_mlp.begin(), f.dla_mlp.end());
    ColorScale scale = color_scale_for(all, true);
    const bool mlp = !f.dla_mlp.empty();
    const int cols = H + (mlp ? 1 : 0);
    ImVec2 avail = ImGui::GetContentRegionAvail();
    const float label_w = 36, label_h = ImGui::GetTextLineHeight() + 2, gap = mlp ? 8.f : 0.f, bar_room = 80;
    float cell = std::min({(avail.x - label_w - gap - bar_room) / cols, (avail.y - label_h - 4) / L, 64.f});
    cell = std::max(cell, 6.f);
    ImVec2 p = ImGui::GetCursorScreenPos();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    char buf[32];
    auto cell_min = [&](int l, int c) {
      return ImVec2(p.x + label_w + c * cell + (c >= H ? gap : 0), p.y + label_h + l * cell);
    };
    for (int h = 0; h < H; ++h) {
      std::snprintf(buf, sizeof buf, "H%d", h);
      dl->AddText(ImVec2(cell_min(0, h).x + 2, p.y), IM_COL32(200, 200, 200, 255), buf);
    }
    if (mlp) dl->AddText(ImVec2(cell_min(0, H).x + 2, p.y), IM_COL32(200, 200, 200, 255), "MLP");
    for (int l = 0; l < L; ++l) {
      std::snprintf(buf, sizeof buf, "L%d", l);
      dl->AddText(ImVec2(p.x, p.y + label_h + l * cell + cell / 2 - label_h / 2), IM_COL32(200, 200, 200, 255), buf);
      for (int c = 0; c < cols; ++c) {
        double v = c < H ? f.dla_heads[static_cast<size_t>(l * H + c)] : f.dla_mlp[static_cast<size_t>(l)];
        Rgb col = colormap_at(scale.map, scale.normalize(v));
        ImVec2 a = cell_min(l, c), b(a.x + cell - 1, a.y + cell - 1);
        dl->AddRectFilled(a, b, im_rgb(col));
        if (cell >= 40) {
          std::snprintf(buf, sizeof buf, "%.2f", v);
          dl->AddText(ImVec2(a.x + 3, a.y + cell / 2 - label_h / 2), text_on(col), buf);
        }
      }
    }
    for (auto [l, h] : m_wb.ablated) {  // ablated heads: crossed out
      if (l >= L || h >= H) continue;
      ImVec2 a = cell_min(l, h), b(a.x + cell - 1, a.y + cell - 1);
      dl->AddLine(a, b, IM_COL32(255, 80, 80, 255), 2);
      dl->AddLine(ImVec2(a.x, b.y), ImVec2(b.x, a.y), IM_COL32(255, 80, 80, 255), 2);
    }
    {  // colour bar: top = scale.hi, bottom = scale.lo
      float bx = cell_min(0, cols - 1).x + cell + 8, by = p.y + label_h, bh = L * cell;
      const int steps = 48;
      for (int i = 0; i < steps; ++i)
        dl->AddRectFilled(ImVec2(bx, by + bh * i / steps), ImVec2(bx + 14, by + bh * (i + 1) / steps + 1),
                          im_rgb(colormap_at(scale.map, 1.0 - (i + 0.5) / steps)));
      std::snprintf(buf, sizeof buf, "%+.3g", scale.hi);
      dl->AddText(ImVec2(bx + 17, by), IM_COL32(220, 220, 220, 255), buf);
      dl->AddText(ImVec2(bx + 17, by + bh / 2 - label_h / 2), IM_COL32(220, 220, 220, 255), "0");
      std::snprintf(buf, sizeof buf, "%+.3g", scale.lo);
      dl->AddText(ImVec2(bx + 17, by + bh - label_h), IM_COL32(220, 220, 220, 255), buf);
    }
    ImGui::InvisibleButton("##dla", ImVec2(label_w + cols * cell + gap, label_h + L * cell));
    if (!ImGui::IsItemHovered()) return;
    ImVec2 m = ImGui::GetIO().MousePos;
    const int l = static_cast<int>((m.y - p.y - label_h) / cell);
    if (m.y < p.y + label_h || l >= L) return;
    const float x = m.x - p.x - label_w;
    const int h = x < 0 ? -1 : static_cast<int>(x / cell);
    if (h >= 0 && h < H) {
      std::pair<int, int> lh{l, h};
      auto& ab = m_wb.ablated;
      const bool on = std::find(ab.begin(), ab.end(), lh) != ab.end();
      ImGui::SetTooltip("L%d H%d  direct contribution %+.4f\nright-click: %s it and re-run", l, h,
                        f.dla_heads[static_cast<size_t>(l * H + h)], on ? "restore" : "ablate (zero its output)");
      if (ImGui::IsMouseClicked(ImGuiMouseButton_Right)) {
        if (on) ab.erase(std::remove(ab.begin(), ab.end(), lh), ab.end());
        else ab.push_back(lh);
        m_wb.run_prompt();
      }
    } else if (mlp && x >= H * cell + gap && x < H * cell + gap + cell) {
      ImGui::SetTooltip("MLP %d  direct contribution %+.4f", l, f.dla_mlp[static_cast<size_t>(l)]);
    }
  }

  std::string m_wrong, m_answer;
  int m_metric = 0;  // 0 logit difference, 1 loss
};
}  // namespace

std::unique_ptr<View> make_contributions_view(Workbench& wb) { return std::make_unique<ContributionsView>(wb); }

}  // namespace ms::views
