// Logit lens window: for every layer (rows) and position (columns) the token the final norm and
// unembedding read from the residual stream after that layer, coloured by its probability, or the
// rank the layer gives the actual next token; the tooltip lists the top 5.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/base/colormap.h"
#include "views/view.h"
#include "views/views.h"
#include "views/workbench.h"

namespace ms::views {

namespace {
class LogitLensView : public View {
 public:
  explicit LogitLensView(Workbench& wb) : View(wb, "Logit lens", "lens") {}

 protected:
  void draw_content() override {
    const auto& f = m_wb.forward();
    if (!f) {
      ImGui::TextDisabled("no forward pass yet");
      return;
    }
    if (!m_wb.want_lens) {  // the first time the window shows: ask for the lens and re-run
      m_wb.want_lens = true;
      m_wb.run_prompt();
    }
    if (f->lens.empty()) {
      ImGui::TextDisabled(f->n_pos > 256 ? "the logit lens is computed for prompts up to 256 tokens" : "computing...");
      return;
    }
    // Colour and text: the top token and its probability, or the rank of the actual next token
    // (what the layer's prediction makes of the token that comes; log scale from rank 1 to 1000).
    ImGui::SetNextItemWidth(260);
    ImGui::Combo("show", &m_mode, "top token (colour: its p)\0rank of the actual next token\0");
    const int L = static_cast<int>(f->n_layers), T = static_cast<int>(f->lens_positions);
    const float cell_w = 64, cell_h = ImGui::GetTextLineHeight() + 6, label_w = 40;
    ImGui::BeginChild("##lens", ImVec2(0, 0), false, ImGuiWindowFlags_HorizontalScrollbar);
    ImVec2 origin = ImGui::GetCursorScreenPos();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    float scroll = ImGui::GetScrollX(), view_w = ImGui::GetWindowWidth();
    int t0 = std::max(0, static_cast<int>((scroll - label_w) / cell_w)), t1 = std::min(T, t0 + static_cast<int>(view_w / cell_w) + 2);
    auto clip = [&](std::string s) {
      while (!s.empty() && ImGui::CalcTextSize(s.c_str()).x > cell_w - 6) s.pop_back();
      return s;
    };
    for (int t = t0; t < t1; ++t) {  // header: the input token at each position
      float x = origin.x + label_w + t * cell_w;
      dl->AddText(ImVec2(x + 3, origin.y), IM_COL32(230, 230, 160, 255), clip(f->tokens[t]).c_str());
    }
    for (int l = 0; l < L; ++l) {
      float y = origin.y + (l + 1) * cell_h;
      dl->AddText(ImVec2(origin.x + scroll, y + 3), IM_COL32(200, 200, 200, 255), ("L" + std::to_string(l)).c_str());
      for (int t = t0; t < t1; ++t) {
        const LensCell& c = f->lens[static_cast<size_t>(l) * T + t];
        const bool by_rank = m_mode == 1;
        if (by_rank && c.next_rank < 1) continue;  // the last position has no next token
        const double v = by_rank ? 1.0 - std::min(1.0, std::log10(static_cast<double>(c.next_rank)) / 3.0) : c.prob;
        Rgb rgb = colormap_at(Colormap::kViridis, v);
        ImVec2 a(origin.x + label_w + t * cell_w, y), b(a.x + cell_w - 1, y + cell_h - 1);
        dl->AddRectFilled(a, b, IM_COL32(rgb.r, rgb.g, rgb.b, 255));
        int lum = (rgb.r * 3 + rgb.g * 6 + rgb.b) / 10;
        dl->AddText(ImVec2(a.x + 3, a.y + 3), lum > 128 ? IM_COL32(0, 0, 0, 255) : IM_COL32(255, 255, 255, 255),
                    clip(by_rank ? "#" + std::to_string(c.next_rank) : c.token).c_str());
        if (ImGui::IsMouseHoveringRect(a, b) && ImGui::IsWindowHovered()) {
          std::string tip = "layer " + std::to_string(l) + ", position " + std::to_string(t) + " (" + f->tokens[t] + ")\n";
          char buf[64];
          for (const auto& [tok, p] : c.top) std::snprintf(buf, sizeof(buf), "  p = %.3f  ", p), tip += buf + tok + "\n";
          if (c.next_rank >= 1) {
            std::snprintf(buf, sizeof(buf), ": rank %lld, p = %.3g", static_cast<long long>(c.next_rank), c.next_prob);
            tip += "actual next token " + f->tokens[t + 1] + buf;
          }
          ImGui::SetTooltip("%s", tip.c_str());
        }
      }
    }
    ImGui::Dummy(ImVec2(label_w + T * cell_w, (L + 1) * cell_h));
    ImGui::EndChild();
  }

  int m_mode = 0;  // 0: top token; 1: rank of the actual next token
};
}  // namespace

std::unique_ptr<View> make_logit_lens_view(Workbench& wb) { return std::make_unique<LogitLensView>(wb); }

}  // namespace ms::views
