// Fuzz target: a safetensors file (header length, JSON header, tensor table), then every small
// tensor converted to float as the model loader does.
#include <ATen/ATen.h>

#include "core/io/safetensors.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(safetensors) {
  using namespace ms;
  const std::string path = fuzz::write_file("model.safetensors", {reinterpret_cast<const char*>(data), size});
  auto file = SafetensorsFile::open(path);
  if (!fuzz::accept(file, "SafetensorsFile::open")) return;
  for (const std::string& name : file.value()->names()) {
    const TensorView* v = file.value()->find(name);
    if (!v || !dtype_is_float(v->dtype) || v->nbytes > (1 << 20)) continue;
    fuzz::expect_input_errors_only([&] { (void)to_tensor(*v, at::kFloat); }, "to_tensor");
  }
}
