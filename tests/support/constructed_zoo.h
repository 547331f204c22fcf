// A constructed zoo model (`mechscope zoo construct NAME`) written once per test process.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/support/test_support.h"

namespace ms::test {

// The folder of the constructed zoo model `name` (sink, massive, copy), built by the real binary
// on first use and kept for the process (removed at exit with the other temporary folders).
inline const std::string& constructed_zoo_dir(const std::string& name) {
  static std::map<std::string, std::string> dirs;
  auto it = dirs.find(name);
  if (it != dirs.end()) return it->second;
  std::string d = temp_dir("zoo-" + name) + "/" + name;
  ProcessResult r = run_mechscope({"zoo", "construct", name, "--out", d});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return dirs.emplace(name, d).first->second;
}

}  // namespace ms::test
