// Replays every fuzz target's corpus kept in the repository (tests/fixtures/fuzz/<target>/: seeds
// from real files and every input that ever crashed a target) through the same entry points the
// libFuzzer binaries call (fuzz/targets/*.cpp). A crash, hang or internal error fails the test.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "fuzz/fuzz_support.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const fs::path kCorpus = fs::path(MECHSCOPE_FIXTURES_DIR) / "fuzz";

}  // namespace

TEST(FuzzRegressions, EveryTargetHasACorpus) {
  ASSERT_GE(ms::fuzz::targets().size(), 14u);
  std::set<std::string> names;
  for (const auto& [name, fn] : ms::fuzz::targets()) {
    EXPECT_TRUE(names.insert(name).second) << name << " registered twice";
    const fs::path dir = kCorpus / name;
    EXPECT_TRUE(fs::is_directory(dir)) << dir << " is missing";
  }
  for (const auto& e : fs::directory_iterator(kCorpus))
    EXPECT_TRUE(!e.is_directory() || names.count(e.path().filename().string()))
        << e.path() << " belongs to no fuzz target";
}

TEST(FuzzRegressions, ReplayEveryInput) {
  size_t n_inputs = 0;
  for (const auto& [name, fn] : ms::fuzz::targets()) {
    const fs::path dir = kCorpus / name;
    if (!fs::is_directory(dir)) continue;
    size_t n_target = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      const std::string bytes = read_bytes(e.path());
      const auto t0 = std::chrono::steady_clock::now();
      fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());  // aborts on a bug
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      // libFuzzer's hang limit in make fuzz-smoke is 10 s per input (a sanitized build is ~3x slower).
      EXPECT_LT(s, 10.0) << e.path() << " took " << s << " s";
      ++n_target;
    }
    EXPECT_GE(n_target, 1u) << name << ": no inputs in " << dir;
    n_inputs += n_target;
  }
  std::printf("replayed %zu inputs through %zu fuzz targets\n", n_inputs, ms::fuzz::targets().size());
}
