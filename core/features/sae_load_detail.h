// Internal to the SAE loaders (core/features/sae_load*.cpp): the shared tensor reading and weight
// checking, and the per-format entry points load_sae() dispatches to. Not part of core's API.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/features/sae.h"
#include "core/features/sae_load.h"

namespace ms::sae_load_detail {

using TensorMap = std::map<std::string, at::Tensor>;

// Every tensor of a safetensors file as float32 (owning its memory); non-float dtypes refused.
TensorMap read_safetensors(const std::string& path);
void expect_shape(const at::Tensor& t, const std::string& name, std::vector<int64_t> shape, const std::string& file,
                  const std::string& why);
// Moves the weights out of the map into sae.w (SAELens' names and orientation), checking every
// shape against sae.cfg; refuses a missing required tensor and any leftover.
void take_weights(Sae& sae, TensorMap tensors, const std::string& file);

std::shared_ptr<Sae> load_npz(const std::string& file, const SaeLoadOptions& opts);

// circuit-tracer's per-layer transcoder folders (core/features/sae_load_transcoder_set.cpp).
bool is_transcoder_set_folder(const std::string& dir);
// N for a file named layer_N.safetensors, else -1.
int transcoder_file_layer(const std::string& path);
std::shared_ptr<Sae> load_transcoder_set(const std::string& dir, int layer, const SaeLoadOptions& opts);

}  // namespace ms::sae_load_detail
