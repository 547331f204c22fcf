// GoogleTest entry point shared by every test binary. Those that link LibTorch first print the
// numerics they run with (OpenBLAS core type, threads, ATen CPU capability) and seed LibTorch's
// global generator, which otherwise starts from a fresh random seed in every process: a test
// that draws its data with at::randn/randint then sees the same draw on every run (on one kind
// of CPU: ATen's vectorised samplers round differently per capability), so a failure reproduces.
// MECHSCOPE_TEST_SEED=N draws other data (how draw-dependent margins are checked).
#include <gtest/gtest.h>

#ifndef MECHSCOPE_WITH_LIBSENTENCEPIECE
#include <ATen/Context.h>

#include <cstdio>
#include <cstdlib>

#include "tests/support/numerics.h"
#endif

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
#ifndef MECHSCOPE_WITH_LIBSENTENCEPIECE
  const char* seed_env = std::getenv("MECHSCOPE_TEST_SEED");
  const uint64_t seed = seed_env && *seed_env ? std::strtoull(seed_env, nullptr, 10) : 20240601;
  at::manual_seed(seed);
  std::printf("%s; global generator seed %llu (MECHSCOPE_TEST_SEED)\n", ms::test::numeric_environment().c_str(),
              static_cast<unsigned long long>(seed));
#endif
  return RUN_ALL_TESTS();
}
