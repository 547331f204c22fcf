// Fuzz target: a circuit-tracer per-layer transcoder folder, the input split at the first NUL into
// config.yaml (read by the minimal YAML reader) and layer_0.safetensors
// (core/features/sae_load_transcoder_set.cpp).
#include <ATen/ATen.h>

#include <filesystem>

#include "core/features/sae_load.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(transcoder_set) {
  using namespace ms;
  const auto parts = fuzz::split_parts(data, size, 2);
  std::filesystem::create_directories(fuzz::scratch_dir() + "/tset");
  fuzz::write_file("tset/config.yaml", parts[0]);
  fuzz::write_file("tset/layer_0.safetensors", parts[1]);
  SaeLoadOptions opts;
  opts.layer = 0;
  fuzz::accept(load_sae(fuzz::scratch_dir() + "/tset", opts), "load_sae (transcoder set)");
}
