// Random-weight models in the Hugging Face layout (config.json + model.safetensors), for
// benchmarks, smoke runs and tests: any supported architecture at any size.
#pragma once

#include <cstdint>
#include <string>

#include "core/model/model.h"
#include "core/base/result.h"

namespace ms {

struct RandomModelSpec {
  std::string arch = "gpt2";  // a family's model_type (arch_names(): gpt2, llama, ...)
  int64_t n_layers = 2;
  int64_t d_model = 64;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 0;  // 0: n_heads
  int64_t d_mlp = 0;       // 0: 4 * d_model; gated MLPs (llama family) 8/3 * d_model rounded to 64
  int64_t d_vocab = 512;
  int64_t n_ctx = 1024;
  uint64_t seed = 0;
  double init_std = 0.02;  // std of the weight matrices (norm weights 1, biases 0)
  int64_t d_head = 0;      // 0: d_model / n_heads (families whose config has head_dim write it)
  std::string dtype = "f32";  // stored dtype: f32 or bf16
};

// Writes config.json and model.safetensors into out_dir (created; refused when it holds files
// unless force). The folder is assembled under a temporary name and renamed at the end.
Status write_random_model(const RandomModelSpec& spec, const std::string& out_dir, bool force);

// Random canonical weights for a config (in memory; see Model::from_weights). Matrices ~ N(0, std),
// norm weights 1 + N(0, std), biases N(0, std) so that no part of the model is trivial.
ModelWeights random_weights(const ModelConfig& cfg, uint64_t seed, double std = 0.02);

}  // namespace ms
