// Fuzz target: an SAELens folder, the input split at the first NUL into cfg.json and
// sae_weights.safetensors (core/features/sae_load.cpp).
#include <ATen/ATen.h>

#include <filesystem>

#include "core/features/sae_load.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(sae) {
  using namespace ms;
  const auto parts = fuzz::split_parts(data, size, 2);
  std::filesystem::create_directories(fuzz::scratch_dir() + "/sae");
  fuzz::write_file("sae/cfg.json", parts[0]);
  fuzz::write_file("sae/sae_weights.safetensors", parts[1]);
  SaeLoadOptions opts;
  opts.norm_scaling_factor = 0.5;  // lets expected_average_only_in configs reach the fold
  fuzz::accept(load_sae(fuzz::scratch_dir() + "/sae", opts), "load_sae");
}
