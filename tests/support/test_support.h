// Helpers shared by the tests: where the reference data and fixtures are, temporary folders,
// running the real mechscope binary.
#pragma once

#include <string>
#include <vector>

namespace ms::test {

// ../shared/reference (MECHSCOPE_REFERENCE_DIR overrides), "" when absent.
std::string reference_dir();
// The checkout this build comes from.
std::string source_dir();
// tests/fixtures in the source tree.
std::string fixtures_dir();
// The built mechscope executable.
std::string mechscope_binary();
// A fresh empty folder under the system temp dir, removed at process exit.
std::string temp_dir(const std::string& tag);
// Reads a whole file; throws on failure.
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

struct ProcessResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the mechscope binary with the given arguments (no shell), captures its output.
ProcessResult run_mechscope(const std::vector<std::string>& args);

}  // namespace ms::test

// Skips the current test with a message when ../shared/reference is absent.
#define MS_REQUIRE_REFERENCE()                                                            \
  do {                                                                                    \
    if (ms::test::reference_dir().empty())                                                \
      GTEST_SKIP() << "../shared/reference is absent; reference tests skipped";           \
  } while (0)
