// Shell: the workbench's frame around the views: main menu, keyboard shortcuts (Ctrl+O open model,
// Ctrl+Enter run, Ctrl+E export, Esc cancel), the error popup and the task status bar. The app
// creates one, calls frame() between ImGui::NewFrame and ImGui::Render, and owns the window.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "views/settings.h"
#include "views/task_manager.h"
#include "views/view.h"
#include "views/workbench.h"

namespace ms::views {

class Shell {
 public:
  explicit Shell(Settings settings);
  ~Shell();

  Workbench& workbench() { return *m_wb; }
  TaskManager& tasks() { return m_tasks; }
  // Shows only the view with this key, filling the window (headless screenshots); false when no
  // view has that key.
  bool solo(const std::string& key);
  View* find(const std::string& key);
  std::vector<std::string> view_keys() const;

  void frame();
  // Ctrl+E / File > Export: the selected run's HTML report beside the database; "" on failure.
  std::string export_selected_run();

 private:
  void draw_menu();
  void handle_shortcuts();
  void draw_status_bar();
  void draw_error_popup();

  Settings m_settings;
  // Tasks hold shared pointers to what they write (never the Workbench itself), so they may
  // outlive it; the TaskManager joins them when the shell goes.
  TaskManager m_tasks;
  std::unique_ptr<Workbench> m_wb;
  std::vector<std::unique_ptr<View>> m_views;
  View* m_solo = nullptr;
  std::string m_error_title, m_error_message;
  bool m_open_error = false;
  bool m_show_demo = false;
};

}  // namespace ms::views
