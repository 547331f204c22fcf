// A test converter from Hugging Face folders to GGUF, written from what llama.cpp's
// convert_hf_to_gguf.py and gguf-py's tensor_mapping.py do, and not from the loader's tables: so
// that a GGUF model loading to the same logits as its folder checks the tables' GGUF columns.
#pragma once

#include <string>

namespace ms::test {

// Converts a folder (config.json + model.safetensors) of model_type qwen2, qwen3, gemma2,
// gemma3_text, phi3 or gpt2 to an F32 GGUF file, as the converter would: llama.cpp's tensor names
// and metadata keys, 1 added to Gemma's norm weights, GPT-2's Conv1D weights transposed and its
// tied output written as output.weight, Gemma 2's lm_head left out, q/k rows in Hugging Face's
// order (the Meta permutation is llama's and mistral's only). No tokenizer is written. Throws
// std::runtime_error for a config the GGUF file could not express (llama.cpp derives Gemma's
// query_pre_attn_scalar, the local/global pattern and the local RoPE base instead of storing them:
// a folder that differs from what it derives is refused, not converted into another model).
void convert_hf_to_gguf(const std::string& hf_dir, const std::string& gguf_path);

}  // namespace ms::test
