// SpecOptions: CLI11 options from an AnalysisSpec.
#include "app/commands/spec_cli.h"

#include "core/base/result.h"

namespace ms::app {

SpecOptions::SpecOptions(CLI::App& cmd, const AnalysisSpec& spec) : m_spec(spec) {
  for (const ParamDecl& d : spec.params) {
    if (!d.applies(kOnCli)) continue;
    if (d.type == ParamType::kBool) {
      m_opt[d.name] = cmd.add_flag(d.cli_flag(), m_flag[d.name], d.help);
      continue;
    }
    CLI::Option* o = cmd.add_option(d.cli_flag(), m_text[d.name], d.help);
    if (!d.def.is_null() && !(d.def.is_string() && d.def.get<std::string>().empty())) o->default_str(param_text(d, d.def));
    m_opt[d.name] = o;
  }
}

nlohmann::json SpecOptions::params() const {
  nlohmann::json p = nlohmann::json::object();
  for (const ParamDecl& d : m_spec.params) {
    auto o = m_opt.find(d.name);
    if (o == m_opt.end() || o->second->count() == 0) continue;
    if (d.type == ParamType::kBool) {  // the flag turns the default around (--evaluate, --no-bos)
      p[d.name] = !(d.def.is_boolean() && d.def.get<bool>());
      continue;
    }
    nlohmann::json v;
    std::string e = param_from_text(d, m_text.at(d.name), &v);
    if (!e.empty()) fail_usage(d.cli_flag() + ": " + e);
    p[d.name] = v;
  }
  return p;
}

}  // namespace ms::app
