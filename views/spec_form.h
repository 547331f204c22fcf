// A launch form made from an AnalysisSpec (runs/analysis_spec.h): one field per parameter of the
// workbench (kInGui) with its declared default and help, read back through the same parser as the
// command line, so a value typed here is stored as the CLI would store it.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "runs/analysis_spec.h"

namespace ms::views {

class SpecForm {
 public:
  explicit SpecForm(const AnalysisSpec& spec);
  void draw();  // the fields (ImGui), inside the caller's window
  // The fields as parameters; "" when fine, else the message naming the parameter.
  std::string params(nlohmann::json* out) const;
  // A field's text set from outside (e.g. a default that depends on the open model).
  void set_text(const std::string& name, const std::string& text) { m_text[name] = text; }
  const std::string& text(const std::string& name) const { return m_text.at(name); }
  // Grey text an empty field shows (e.g. what the default comes to for the open model).
  void set_hint(const std::string& name, const std::string& hint) { m_hint[name] = hint; }

 private:
  const AnalysisSpec& m_spec;
  std::map<std::string, std::string> m_text;  // text fields and choices
  std::map<std::string, bool> m_flag;         // booleans
  std::map<std::string, std::string> m_hint;  // shown by empty text fields
};

}  // namespace ms::views
