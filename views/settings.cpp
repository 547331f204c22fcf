// Settings: a key=value text file, one recent model per "recent=" line.
#include "views/settings.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/base/atomic_file.h"

namespace ms::views {

std::string Settings::config_dir() {
  std::string base;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) base = x;
  else if (const char* h = std::getenv("HOME"); h && *h) base = std::string(h) + "/.config";
  else return "";
  std::string dir = base + "/mechscope";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return ec ? "" : dir;
}

void Settings::load() {
  if (file.empty()) return;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "recent" && recent_models.size() < 8) recent_models.push_back(v);
    else if (k == "db") db = v;
    else if (k == "scale") scale = v;
  }
}

void Settings::save() const {
  if (file.empty()) return;
  std::string text = "# mechscope gui settings\n";
  for (const auto& r : recent_models) text += "recent=" + r + "\n";
  if (!db.empty()) text += "db=" + db + "\n";
  text += "scale=" + scale + "\n";
  try {
    write_file_atomic(file, text);
  } catch (const std::exception&) {
    // settings are a convenience: a read-only config folder must not stop the workbench
  }
}

void Settings::add_recent(const std::string& model_dir) {
  recent_models.erase(std::remove(recent_models.begin(), recent_models.end(), model_dir), recent_models.end());
  recent_models.insert(recent_models.begin(), model_dir);
  if (recent_models.size() > 8) recent_models.resize(8);
}

}  // namespace ms::views
