// The command-line options of an analysis, made from its AnalysisSpec (runs/analysis_spec.h): one
// option per parameter that applies on the command line, with the declaration's help and default,
// read back as the JSON parameters the run functions take.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "runs/analysis_spec.h"

namespace ms::app {

class SpecOptions {
 public:
  SpecOptions(CLI::App& cmd, const AnalysisSpec& spec);
  // The options given, as canonical JSON values (defaults are left to the run function); a usage
  // error names the flag.
  nlohmann::json params() const;

 private:
  const AnalysisSpec& m_spec;
  std::map<std::string, std::string> m_text;  // stable addresses for CLI11
  std::map<std::string, bool> m_flag;
  std::map<std::string, CLI::Option*> m_opt;
};

}  // namespace ms::app
