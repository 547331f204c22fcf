// SpecOptions: CLI11 options from an AnalysisSpec.
#include "app/commands/spec_cli.h"

#include "core/base/result.h"

namespace ms::app {
namespace {

// What --help shows as the option's value.
std::string type_name(const ParamDecl& d) {
  switch (d.type) {
    case ParamType::kInt: return "INT";
    case ParamType::kFloat: return "FLOAT";
    case ParamType::kPath: return "FILE";
    case ParamType::kHeads: return "L.H,...";
    case ParamType::kThreshold: return "abs:X|rel:X";
    case ParamType::kIntList: return "INT,...";
    case ParamType::kChoice: {
      std::string s;
      for (const auto& c : d.choices) s += (s.empty() ? "" : "|") + c;
      return s;
    }
    default: return "TEXT";
  }
}

}  // namespace

SpecOptions::SpecOptions(CLI::App& cmd, const AnalysisSpec& spec) : m_spec(spec) {
  for (const ParamDecl& d : spec.params) {
    if (!d.applies(kOnCli)) continue;
    if (d.type == ParamType::kBool) {
      const bool on = d.def.is_boolean() && d.def.get<bool>();  // then the flag turns it off
      m_opt[d.name] = cmd.add_flag(d.cli_flag(), m_flag[d.name], on ? "turn off: " + d.help : d.help);
      continue;
    }
    CLI::Option* o = cmd.add_option(d.cli_flag(), m_text[d.name], d.help)->type_name(type_name(d));
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
