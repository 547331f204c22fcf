// Fuzz target: a NumPy .npy file (magic, version, header dict, data).
#include <ATen/ATen.h>

#include "core/io/npy.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(npy) {
  using namespace ms;
  const std::string path = fuzz::write_file("array.npy", {reinterpret_cast<const char*>(data), size});
  fuzz::accept(read_npy(path), "read_npy");
}
