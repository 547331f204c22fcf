// Fuzz target: model.safetensors.index.json (the weight map of a sharded checkpoint) in a folder
// holding two small valid shards, model-00001-of-00002.safetensors (a, b) and ...-00002 (c).
#include <ATen/ATen.h>

#include "core/io/safetensors.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(safetensors_index) {
  using namespace ms;
  static const bool shards = [] {
    const std::string d = fuzz::scratch_dir();
    Status a = write_safetensors(d + "/model-00001-of-00002.safetensors",
                                 {{"a", at::ones({2, 3})}, {"b", at::zeros({4}, at::kHalf)}});
    Status b = write_safetensors(d + "/model-00002-of-00002.safetensors", {{"c", at::ones({1})}});
    return a.ok() && b.ok();
  }();
  if (!shards) std::abort();
  fuzz::write_file("model.safetensors.index.json", {reinterpret_cast<const char*>(data), size});
  auto ckpt = SafetensorsCheckpoint::open_dir(fuzz::scratch_dir());
  if (!fuzz::accept(ckpt, "SafetensorsCheckpoint::open_dir")) return;
  for (const std::string& name : ckpt.value()->names()) (void)ckpt.value()->find(name);
}
