// Reading, checking, storing and quoting parameters from their one declaration.
#include "runs/analysis_spec.h"

#include <algorithm>
#include <cmath>

#include "core/analysis/sinks/hidden_threshold.h"
#include "core/base/head_ref.h"
#include "core/base/number_text.h"
#include "storage/records.h"

namespace ms {

const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::kInt: return "an integer";
    case ParamType::kFloat: return "a number";
    case ParamType::kString: return "a string";
    case ParamType::kBool: return "a boolean";
    case ParamType::kPath: return "a file path (string)";
    case ParamType::kChoice: return "a string (one of the choices)";
    case ParamType::kHeads: return "a string LAYER.HEAD,...";
    case ParamType::kThreshold: return "a string abs:X or rel:X";
    case ParamType::kIntList: return "a list of integers";
  }
  return "?";
}

std::string ParamDecl::cli_flag() const {
  if (!flag.empty()) return flag;
  std::string f = "--" + name;
  std::replace(f.begin(), f.end(), '_', '-');
  return f;
}

const ParamDecl* AnalysisSpec::find(const std::string& name) const {
  for (const auto& d : params)
    if (d.name == name) return &d;
  return nullptr;
}

namespace {

// "a, b, c or d"
std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i == 0 ? "" : i + 1 == v.size() ? " or " : ", ") + v[i];
  return s;
}

std::string range_text(const ParamDecl& d) {
  return std::string(d.lo_open ? "(" : "[") + number_text(d.lo) + ", " + number_text(d.hi) + (d.hi_open ? ")" : "]");
}

std::string check_range(const ParamDecl& d, double x) {
  const bool below = d.lo_open ? !(x > d.lo) : !(x >= d.lo);
  const bool above = d.hi_open ? !(x < d.hi) : !(x <= d.hi);
  if (!below && !above) return "";
  if (std::isinf(d.hi)) return d.name + " must be " + (d.lo_open ? "above " : "at least ") + number_text(d.lo) + ", not " + number_text(x);
  if (std::isinf(d.lo)) return d.name + " must be " + (d.hi_open ? "below " : "at most ") + number_text(d.hi) + ", not " + number_text(x);
  return d.name + " must be in " + range_text(d) + ", not " + number_text(x);
}

}  // namespace

std::string check_param(const ParamDecl& d, nlohmann::json& v) {
  const std::string wrong = d.name + " must be " + param_type_name(d.type);
  switch (d.type) {
    case ParamType::kInt:
      if (!v.is_number_integer()) return wrong;
      return check_range(d, static_cast<double>(v.get<int64_t>()));
    case ParamType::kFloat:
      if (!v.is_number()) return wrong;
      v = v.get<double>();
      return check_range(d, v.get<double>());
    case ParamType::kBool:
      return v.is_boolean() ? "" : wrong;
    case ParamType::kString:
    case ParamType::kPath:
      return v.is_string() ? "" : wrong;
    case ParamType::kChoice: {
      if (!v.is_string()) return wrong;
      if (std::find(d.choices.begin(), d.choices.end(), v.get<std::string>()) == d.choices.end())
        return d.name + " '" + v.get<std::string>() + "': expected " + join(d.choices);
      return "";
    }
    case ParamType::kHeads: {
      if (!v.is_string()) return wrong;
      std::vector<HeadRef> hs;
      std::string e = HeadRef::parse_list(v.get<std::string>(), &hs);
      if (!e.empty()) return d.name + ": " + e;
      std::string canon;
      for (const auto& h : hs) canon += (canon.empty() ? "" : ",") + h.name();
      v = canon;
      return "";
    }
    case ParamType::kThreshold: {
      if (!v.is_string()) return wrong;
      HiddenThreshold t;
      std::string e = HiddenThreshold::parse(v.get<std::string>(), &t);
      if (!e.empty()) return e;
      v = t.text();
      return "";
    }
    case ParamType::kIntList: {
      if (v.is_number_integer()) v = nlohmann::json::array({v});
      if (!v.is_array()) return wrong;
      for (const nlohmann::json& e : v) {
        if (!e.is_number_integer()) return wrong;
        std::string r = check_range(d, static_cast<double>(e.get<int64_t>()));
        if (!r.empty()) return r;
      }
      return "";
    }
  }
  return wrong;
}

std::string param_from_text(const ParamDecl& d, const std::string& text, nlohmann::json* out) {
  nlohmann::json v;
  double x = 0;
  switch (d.type) {
    case ParamType::kInt:
      if (!parse_number(text, &x) || x != std::floor(x) || std::fabs(x) > 9e15 || text.find_first_of(".eE") != std::string::npos)
        return d.name + " '" + text + "' is not a whole number";
      v = static_cast<int64_t>(x);
      break;
    case ParamType::kFloat:
      if (!parse_number(text, &x)) return d.name + " '" + text + "' is not a number";
      v = x;
      break;
    case ParamType::kBool:
      if (text != "true" && text != "false" && text != "1" && text != "0")
        return d.name + " '" + text + "': expected true or false";
      v = text == "true" || text == "1";
      break;
    case ParamType::kIntList: {  // "a,b c": commas or spaces
      v = nlohmann::json::array();
      std::string item;
      for (size_t i = 0; i <= text.size(); ++i) {
        if (i < text.size() && text[i] != ',' && text[i] != ' ') {
          item += text[i];
          continue;
        }
        if (item.empty()) continue;
        if (!parse_number(item, &x) || x != std::floor(x) || std::fabs(x) > 9e15 || item.find_first_of(".eE") != std::string::npos)
          return d.name + ": '" + item + "' is not a whole number";
        v.push_back(static_cast<int64_t>(x));
        item.clear();
      }
      break;
    }
    default:
      v = text;
  }
  std::string e = check_param(d, v);
  if (e.empty()) *out = v;
  return e;
}

std::string param_text(const ParamDecl& d, const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return number_text(v.get<double>());
  if (v.is_array() && d.type == ParamType::kIntList) {
    std::string s;
    for (const nlohmann::json& e : v) s += (s.empty() ? "" : ",") + param_text(d, e);
    return s;
  }
  return v.dump();
}

std::string complete_params(const AnalysisSpec& spec, unsigned where, nlohmann::json& p, const ModelConfig* c,
                            std::string* param) {
  if (!p.is_object()) p = nlohmann::json::object();
  for (auto it = p.begin(); it != p.end(); ++it) {
    const ParamDecl* d = spec.find(it.key());
    if (!d || !d->applies(where)) return *param = it.key(), "'" + it.key() + "' is not a parameter of " + spec.kind;
  }
  for (const ParamDecl& d : spec.params) {
    if (!d.applies(where)) continue;
    if (!p.contains(d.name)) {
      if (d.def.is_null()) return *param = d.name, spec.kind + " needs " + d.name + " (" + d.help + ")";
      p[d.name] = d.def;
    }
    std::string e = check_param(d, p[d.name]);
    if (!e.empty()) return *param = d.name, e;
  }
  return spec.check ? spec.check(p, c, param) : "";
}

nlohmann::json stored_params(const AnalysisSpec& spec, const nlohmann::json& p) {
  nlohmann::json out = nlohmann::json::object();
  for (const ParamDecl& d : spec.params)
    if (d.applies(kStored) && p.contains(d.name)) out[d.name] = p[d.name];
  return out;
}

std::string reproduce_command(const AnalysisSpec& spec, const nlohmann::json& p,
                              const std::vector<std::pair<std::string, std::string>>& inputs) {
  std::vector<std::string> argv = {"mechscope"};
  if (spec.command.empty()) argv.push_back(spec.kind);
  for (size_t a = 0, b = 0; !spec.command.empty() && a < spec.command.size(); a = b + 1) {
    b = spec.command.find(' ', a);
    if (b == std::string::npos) b = spec.command.size();
    argv.push_back(spec.command.substr(a, b - a));
  }
  for (const auto& [flag, value] : inputs) argv.push_back(flag), argv.push_back(value);
  for (const ParamDecl& d : spec.params) {
    if (!d.applies(kOnCli) || !d.applies(kStored) || !p.contains(d.name)) continue;
    if (d.type == ParamType::kBool) {  // the flag turns the default around
      if (p[d.name].get<bool>() != (d.def.is_boolean() && d.def.get<bool>())) argv.push_back(d.cli_flag());
      continue;
    }
    if (p[d.name].is_string() && p[d.name].get<std::string>().empty()) continue;  // "": not given
    if (p[d.name].is_array() && p[d.name].empty()) continue;                        // []: not given
    argv.push_back(d.cli_flag());
    argv.push_back(param_text(d, p[d.name]));
  }
  return shell_join(argv);
}

}  // namespace ms
