// View: the base of every workbench window. draw() always pairs ImGui::Begin with ImGui::End and
// calls draw_content() in between; a view holds UI state only and reads shared state from the
// Workbench (long work runs as background tasks, never inside draw()).
#pragma once

#include <string>

namespace ms::views {

class Workbench;

class View {
 public:
  // title: the window title; key: the name `mechscope gui --view KEY` uses.
  View(Workbench& wb, std::string title, std::string key);
  virtual ~View() = default;
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  const std::string& title() const { return m_title; }
  const std::string& key() const { return m_key; }
  bool& open() { return m_open; }
  // Headless screenshots: the window fills the whole viewport, without decorations.
  void set_fullscreen(bool on) { m_fullscreen = on; }
  // Placement the first time (before imgui.ini remembers one), in fractions of the area between
  // the main menu bar and the status bar; registry.cpp tiles the windows open at start with it.
  struct Rect {
    float x = 0.3f, y = 0.05f, w = 0.4f, h = 0.5f;
  };
  void set_default_rect(Rect r) { m_default = r; }
  // Where the window was drawn last frame, in window pixels (w = 0 before it was drawn).
  const Rect& last_rect() const { return m_last; }

  void draw();
  // Headless screenshots: lines saying where the view drew its figures last frame ("grid NAME:
  // x=.. y=.. cell_w=.. cell_h=.. rows=.. cols=..", ...), printed by `gui --screenshot`. "" if none.
  virtual std::string layout_report() const { return ""; }

 protected:
  virtual void draw_content() = 0;
  // For views that draw the current forward pass: true when there is one; else it says why not
  // (no model, or the pass still running) and returns false.
  bool have_forward() const;

  Workbench& m_wb;

 private:
  std::string m_title, m_key;
  bool m_open = true;
  bool m_fullscreen = false;
  Rect m_default, m_last{0, 0, 0, 0};
};

}  // namespace ms::views
