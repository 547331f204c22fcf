// The one text form of a number that a parameter is stored and shown with: the shortest decimal
// that reads back as the same double ("0.1", not "0.100000"), so the CLI, batch and the workbench
// store the same string for the same value.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace ms {

inline std::string number_text(double x) {
  char buf[40];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof(buf), "%.*g", prec, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

// A whole decimal number "X" (strtod, nothing left over, finite); false otherwise.
inline bool parse_number(const std::string& s, double* out) {
  if (s.empty() || s.find_first_of(" \t\n") != std::string::npos) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !(v == v) || v > 1.7e308 || v < -1.7e308) return false;
  *out = v;
  return true;
}

}  // namespace ms
