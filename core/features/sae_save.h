// Writing an SAE or transcoder as an SAELens 6.x folder (what SAE.save_inference_model writes):
// cfg.json (architecture, d_in, d_sae, dtype, device, apply_b_dec_to_input, normalize_activations,
// reshape_activations, k for topk, d_out for transcoders, and metadata with hook_name, model_name
// and the training context) and sae_weights.safetensors (W_enc [d_in, d_sae], b_enc, W_dec
// [d_sae, d_out], b_dec, threshold for jumprelu, W_skip for skip transcoders). load_sae reads it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/base/result.h"
#include "core/features/sae.h"

namespace ms {

// The SAELens version whose saved layout this writer follows.
constexpr const char* kSaeLensLayoutVersion = "6.12.1";

// Writes dir/cfg.json and dir/sae_weights.safetensors (each through a temporary file renamed into
// place; the folder is created). extra_metadata is merged into cfg.json's "metadata" (e.g. the
// training context: context_size, dataset_path, steps). The SAE's runtime norm must be none
// (a trained SAE has its scaling folded in). Errors name the path.
Status save_sae(const Sae& sae, const std::string& dir, const nlohmann::json& extra_metadata = nlohmann::json::object());

// cfg.json's content for the SAE (what save_sae writes).
nlohmann::json sae_cfg_json(const Sae& sae, const nlohmann::json& extra_metadata = nlohmann::json::object());

}  // namespace ms
