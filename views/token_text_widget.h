// TokenTextWidget: a prompt's tokens laid out as wrapped text (CircuitsVis' coloured tokens), each
// shaded by its weight in one row of an attention matrix (what the focus token attends to) or one
// column (what attends to it). The focus is the hovered token, else the pinned one (click pins). The
// shade is the weight over the row's maximum, or the weight itself (absolute scale).
// The layout is computed once per prompt and width and only visible lines are drawn, so a
// 2,048-token prompt costs the frame a screenful of chips.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/base/colormap.h"

namespace ms::views {

// A token's chip as drawn last frame, in window pixels, with the weight that shaded it (NaN: none).
struct TokenChip {
  int token = 0;
  float x = 0, y = 0, w = 0, h = 0;
  float value = 0;
};

// The chip colour for a shade t in [0, 1] (0: the unshaded chip; 1: the full shade): the weight over
// the focus row's maximum, or the weight itself on the absolute scale.
Rgb token_shade(double t);

class TokenTextWidget {
 public:
  // A new prompt (display text per token, token_display): the layout is redone at the next draw.
  void set_tokens(std::vector<std::string> tokens);
  // The n x n [query, key] matrix that shades the chips (NaN: masked); null: no shading.
  void set_matrix(std::shared_ptr<const std::vector<float>> values);
  // Shade by the focus token's column (attention it receives) instead of its row (attention it pays).
  void set_received(bool on) { m_received = on; }
  // The full shade at 1.0 (absolute: a diffuse row looks pale) instead of at the focus row's maximum.
  void set_absolute(bool on) { m_absolute = on; }
  bool absolute() const { return m_absolute; }
  int pinned() const { return m_pinned; }
  // Pinning another token (from outside: a command-line pin, another window) scrolls the text so
  // its chip shows, at the next draw that has it laid out.
  void set_pinned(int token);
  // Benchmarks: behave as if this token were hovered (-1: the mouse decides).
  void set_forced_hover(int token) { m_forced_hover = token; }
  // The token whose row (or column) shades the text this frame: hovered, else pinned (-1: none).
  int focus() const { return m_focus; }
  double focus_max() const { return m_max; }  // the largest weight in the focus row (the full shade)

  // Draws into the remaining content region (a scrolling child).
  void draw();
  // The colour legend: a bar from the unshaded chip to the full shade, labelled 0 and what the full
  // shade is (the focus row's maximum, or 1 on the absolute scale).
  void draw_legend(float width) const;
  // The scrolling child's visible rows last frame, in window pixels, and its scroll offset.
  float view_top() const { return m_view_top; }
  float view_bottom() const { return m_view_bottom; }
  float scroll_y() const { return m_scroll_y; }
  const std::vector<TokenChip>& chips() const { return m_chips; }
  int n_lines() const { return static_cast<int>(m_line_start.size()); }

 private:
  void layout(float width);
  float weight(int token) const;

  std::vector<std::string> m_tokens;
  std::vector<float> m_text_w;  // text width per token (measured once per prompt)
  std::vector<int> m_line_start;  // first token of each line
  std::vector<float> m_x;         // x of each token's chip within its line
  float m_layout_width = -1;
  std::shared_ptr<const std::vector<float>> m_values;
  bool m_received = false, m_absolute = false;
  bool m_scroll_to_pinned = false;
  int m_pinned = -1, m_forced_hover = -1, m_focus = -1;
  float m_view_top = 0, m_view_bottom = 0, m_scroll_y = 0;
  double m_max = 0;
  std::vector<TokenChip> m_chips;
};

}  // namespace ms::views
