// The tests' float32 comparisons (tests/support/numerics.h) fail where they should, and the
// kernels a run asks for (OPENBLAS_CORETYPE, ATEN_CPU_CAPABILITY, OMP_NUM_THREADS: the numeric-alt
// label sets them) are the ones that run, so a green numeric-alt run did test other kernels.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "core/attention/fused_attention.h"
#include "tests/support/numerics.h"

namespace ms {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

TEST(Numerics, CloseRelIsRelativeToTheScale) {
  at::Tensor ref = at::tensor({1000.0, -2000.0, 3.0});
  EXPECT_TRUE(test::close_rel("scaled", ref + 0.01, ref, 1e-5));    // 0.01 of 2000: 5e-6
  EXPECT_FALSE(test::close_rel("scaled", ref + 0.05, ref, 1e-5));   // 2.5e-5
  at::Tensor small = ref * 1e-6;
  EXPECT_FALSE(test::close_rel("small", small + 0.01, small, 1e-5));  // the same 0.01 is huge here
  // floor: a result near zero compared against the scale of what it came from.
  EXPECT_TRUE(test::close_rel("floor", at::tensor({1e-7}), at::tensor({0.0}), 1e-5, 1.0));
  EXPECT_FALSE(test::close_rel("floor", at::tensor({1e-7}), at::tensor({0.0}), 1e-5));
  // Scalars.
  EXPECT_TRUE(test::close_rel("scalar", 1.00001, 1.0, 1e-5, 10.0));
  EXPECT_FALSE(test::close_rel("scalar", 1.001, 1.0, 1e-5, 10.0));
  EXPECT_FALSE(test::close_rel("nan", std::nan(""), 1.0, 1e-5, 1.0));
}

TEST(Numerics, CloseRelRefusesOtherShapesAndOtherInfinities) {
  const double inf = std::numeric_limits<double>::infinity();
  at::Tensor masked = at::tensor({1.0, -inf, 2.0});
  EXPECT_TRUE(test::close_rel("same -inf", masked.clone(), masked, 1e-5));
  EXPECT_FALSE(test::close_rel("-inf lost", at::tensor({1.0, -1e30, 2.0}), masked, 1e-5));
  EXPECT_FALSE(test::close_rel("nan", at::tensor({1.0, -inf, std::nan("")}), masked, 1e-5));
  EXPECT_FALSE(test::close_rel("shape", at::zeros({2, 3}), at::zeros({3, 2}), 1e-5));
  EXPECT_TRUE(test::close_rel("empty", at::zeros({0}), at::zeros({0}), 1e-5));
}

// OpenBLAS reads OPENBLAS_CORETYPE when it loads; an unknown name falls back to the detected core
// (and a core the CPU cannot run dies with SIGILL before any test), so a run that asks for a core
// must get it, or the label that asks would test nothing new.
TEST(Numerics, RequestedKernelsAreTheOnesRunning) {
  const std::string line = test::numeric_environment();
  std::printf("%s\n", line.c_str());
  const std::string core = env("OPENBLAS_CORETYPE");
  if (!core.empty()) {
    EXPECT_NE(lower(line).find("openblas core " + lower(core) + " "), std::string::npos) << line;
  }
  // LibTorch reports the capability it uses: "default" is its plain build, shown as "NO AVX".
  const std::string cap = lower(env("ATEN_CPU_CAPABILITY"));
  if (!cap.empty()) {
    const std::string shown = cap == "default" ? "no avx" : cap;
    EXPECT_NE(lower(line).find("cpu capability " + shown + " "), std::string::npos) << line;
  }
  const std::string omp = env("OMP_NUM_THREADS");
  if (!omp.empty()) {
    EXPECT_EQ(at::get_num_threads(), std::atoi(omp.c_str())) << line;
  }
}

// MECHSCOPE_ATTENTION_KERNELS caps the fused attention kernel's instruction set (numeric-alt sets
// avx2, so a machine with AVX-512 runs the AVX2 kernels there): the cap is the set in use.
TEST(Numerics, AttentionKernelsAskedForRun) {
  const std::string want = env("MECHSCOPE_ATTENTION_KERNELS");
  const std::string got = fused_attention_kernels();
  std::printf("fused attention kernels: %s (MECHSCOPE_ATTENTION_KERNELS=%s)\n", got.c_str(), want.c_str());
  if (want == "portable") EXPECT_EQ(got, "portable");
  if (want == "avx2") EXPECT_TRUE(got == "avx2" || got == "portable") << got;  // portable: a CPU without AVX2
  EXPECT_EQ(std::string(fused_attention_kernels(true)), "portable");
}

}  // namespace
}  // namespace ms
