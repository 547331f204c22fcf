// The hidden-sink threshold as written on the command line, in job files and in stored runs:
// "abs:X" (alpha_k > X, ACT's code) or "rel:X" (alpha_k > X / visible keys, ACT's paper). One
// parser and one canonical text ("abs:0.1", never "abs:0.100000") for every front end.
#pragma once

#include <string>

#include "core/analysis/sinks/sinks.h"
#include "core/base/number_text.h"

namespace ms {

struct HiddenThreshold {
  bool relative = false;
  double value = 0.1;
  std::string text() const { return std::string(relative ? "rel:" : "abs:") + number_text(value); }
  void apply(SinkOptions& o) const { o.hidden_relative = relative, o.hidden_threshold = value; }

  // "abs:X" / "rel:X" with X >= 0; "" when fine, else the message.
  static std::string parse(const std::string& s, HiddenThreshold* out) {
    const std::string bad = "hidden_threshold '" + s + "': expected abs:X or rel:X (X >= 0)";
    size_t colon = s.find(':');
    if (colon == std::string::npos) return bad;
    const std::string kind = s.substr(0, colon);
    double x = 0;
    if ((kind != "abs" && kind != "rel") || !parse_number(s.substr(colon + 1), &x) || !(x >= 0)) return bad;
    out->relative = kind == "rel";
    out->value = x;
    return "";
  }
};

}  // namespace ms
