// Fuzz target: a NumPy .npz archive (zip of .npy members, libzip) loaded as a Gemma Scope SAE.
#include <ATen/ATen.h>

#include "core/features/sae_load.h"
#include "core/io/npz.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(npz) {
  using namespace ms;
  const std::string path = fuzz::write_file("params.npz", {reinterpret_cast<const char*>(data), size});
  if (fuzz::accept(read_npz(path), "read_npz")) fuzz::accept(load_sae(path), "load_sae(npz)");
}
