// TokenTextWidget: a prompt's tokens laid out as wrapped text (CircuitsVis' coloured tokens), each
// shaded by its weight in one row of an attention matrix (what the focus token attends to) or one
// column (what attends to it). The focus is the hovered token, else the pinned one (click pins).
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

// The chip colour for a weight t in [0, 1] of the focus row's maximum (0: the unshaded chip).
Rgb token_shade(double t);

class TokenTextWidget {
 public:
  // A new prompt (display text per token, token_display): the layout is redone at the next draw.
  void set_tokens(std::vector<std::string> tokens);
  // The n x n [query, key] matrix that shades the chips (NaN: masked); null: no shading.
  void set_matrix(std::shared_ptr<const std::vector<float>> values);
  // Shade by the focus token's column (attention it receives) instead of its row (attention it pays).
  void set_received(bool on) { m_received = on; }
  int pinned() const { return m_pinned; }
  void set_pinned(int token) { m_pinned = token; }
  // Benchmarks: behave as if this token were hovered (-1: the mouse decides).
  void set_forced_hover(int token) { m_forced_hover = token; }
  // The token whose row (or column) shades the text this frame: hovered, else pinned (-1: none).
  int focus() const { return m_focus; }
  double focus_max() const { return m_max; }  // the largest weight in the focus row (the full shade)

  // Draws into the remaining content region (a scrolling child).
  void draw();
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
  bool m_received = false;
  int m_pinned = -1, m_forced_hover = -1, m_focus = -1;
  double m_max = 0;
  std::vector<TokenChip> m_chips;
};

}  // namespace ms::views
