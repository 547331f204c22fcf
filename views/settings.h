// Settings the workbench keeps between sessions (recent model folders, database, colour scale),
// in a small key=value file beside imgui.ini under $XDG_CONFIG_HOME/mechscope (or ~/.config).
#pragma once

#include <string>
#include <vector>

namespace ms::views {

struct Settings {
  std::vector<std::string> recent_models;  // newest first, at most 8
  std::string db;
  std::string scale = "linear";
  std::string file;  // where load()/save() read and write; "" = not persisted

  // $XDG_CONFIG_HOME/mechscope (or ~/.config/mechscope), created; "" when there is no home.
  static std::string config_dir();
  void load();        // missing or unreadable file: defaults
  void save() const;  // best effort, atomic
  void add_recent(const std::string& model_dir);
};

}  // namespace ms::views
