// GoogleTest entry point shared by every test binary. Those that link LibTorch first print the
// numerics they run with (OpenBLAS core type, threads, ATen CPU capability), so a log shows which
// kernels gave its figures.
#include <gtest/gtest.h>

#ifndef MECHSCOPE_WITH_LIBSENTENCEPIECE
#include <cstdio>

#include "tests/support/numerics.h"
#endif

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
#ifndef MECHSCOPE_WITH_LIBSENTENCEPIECE
  std::printf("%s\n", ms::test::numeric_environment().c_str());
#endif
  return RUN_ALL_TESTS();
}
