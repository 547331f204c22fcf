// Saving a model in the Hugging Face layout (config.json + model.safetensors + extra files such
// as tokenizer.json and zoo.json), the exact inverse of the loader, written atomically.
#pragma once

#include <map>
#include <string>

#include "core/model/model.h"
#include "core/base/result.h"

namespace ms {

// The config.json text Hugging Face would write for cfg, from its family's table (core/model/arch/).
// An attention-only config (d_mlp 0) is written as GPT-2 / Llama with a one-unit MLP whose weights
// are all zero, which computes exactly the same function and stays loadable by any HF tool.
std::string hf_config_json(const ModelConfig& cfg);

// Writes config.json, model.safetensors (float32, HF tensor names) and the extra files
// (name -> content) into dir. Everything is written under "dir.tmp" and renamed at the end, so
// an interrupted save never leaves a half-written model; an existing dir is refused unless
// overwrite.
Status save_model_hf(const ModelConfig& cfg, const ModelWeights& weights, const std::string& dir,
                     const std::map<std::string, std::string>& extra_files = {},
                     bool overwrite = false);

}  // namespace ms
