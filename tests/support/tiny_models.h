// Tiny in-memory models of each architecture family for hook and forward-pass tests.
#pragma once

#include <memory>
#include <string>

#include "core/model/model.h"

namespace ms::test {

// "gpt2" (learned positions, LayerNorm, sequential), "neox" (parallel, partial rotary),
// "llama" (RMSNorm, SwiGLU, GQA 4 heads / 2 KV heads), "mistral" (llama + sliding window 3),
// "attn_only" (2-layer attention-only GPT-2 style).
ModelConfig tiny_config(const std::string& family);
std::unique_ptr<Model> tiny_model(const std::string& family, uint64_t seed = 1);

}  // namespace ms::test
