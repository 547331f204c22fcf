// save_sae: the SAELens folder layout (cfg.json + sae_weights.safetensors), written atomically.
#include "core/features/sae_save.h"

#include <ATen/ATen.h>

#include <filesystem>

#include "core/base/atomic_file.h"
#include "core/io/safetensors.h"

namespace fs = std::filesystem;

namespace ms {

nlohmann::json sae_cfg_json(const Sae& sae, const nlohmann::json& extra_metadata) {
  const SaeConfig& c = sae.cfg;
  nlohmann::json meta{{"sae_lens_version", kSaeLensLayoutVersion},
                      {"sae_lens_training_version", kSaeLensLayoutVersion},
                      {"model_name", c.model_name},
                      {"hook_name", c.hook_name},
                      {"hook_head_index", c.hook_head_index >= 0 ? nlohmann::json(c.hook_head_index) : nlohmann::json()},
                      {"prepend_bos", c.prepend_bos},
                      {"model_class_name", "HookedTransformer"},
                      {"exclude_special_tokens", true},
                      {"model_from_pretrained_kwargs", nlohmann::json::object()},
                      {"written_by", "mechscope"}};
  if (sae_is_transcoder(c.arch)) meta["hook_name_out"] = c.hook_name_out;
  for (auto it = extra_metadata.begin(); it != extra_metadata.end(); ++it) meta[it.key()] = *it;
  nlohmann::json j{{"architecture", sae_arch_name(c.arch)},
                   {"d_in", c.d_in},
                   {"d_sae", c.d_sae},
                   {"dtype", "float32"},
                   {"device", "cpu"},
                   {"apply_b_dec_to_input", c.apply_b_dec_to_input},
                   {"normalize_activations", "none"},
                   {"reshape_activations", c.reshape_hook_z ? "hook_z" : "none"},
                   {"metadata", meta}};
  if (c.arch == SaeArch::kTopK) {
    j["k"] = c.k;
    j["rescale_acts_by_decoder_norm"] = false;
  }
  if (sae_is_transcoder(c.arch)) {
    j["d_out"] = c.d_out;
    j["hook_name_out"] = c.hook_name_out;  // SAELens' transcoder config keeps it at the top level too
  }
  return j;
}

Status save_sae(const Sae& sae, const std::string& dir, const nlohmann::json& extra_metadata) {
  return guard([&] {
    const SaeConfig& c = sae.cfg;
    if (c.runtime_norm != SaeRuntimeNorm::kNone)
      fail_usage(dir + ": an SAE with a runtime normalisation (" + c.normalize_activations + ") is not written here");
    if (c.arch == SaeArch::kGated) fail_usage(dir + ": writing gated SAEs is not supported");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail_input(dir + ": cannot create the folder: " + ec.message());
    std::vector<std::pair<std::string, at::Tensor>> t{{"W_enc", sae.w.W_enc.to(at::kFloat).cpu().contiguous()},
                                                      {"b_enc", sae.w.b_enc.to(at::kFloat).cpu().contiguous()},
                                                      {"W_dec", sae.w.W_dec.to(at::kFloat).cpu().contiguous()},
                                                      {"b_dec", sae.w.b_dec.to(at::kFloat).cpu().contiguous()}};
    if (sae.w.threshold.defined()) t.emplace_back("threshold", sae.w.threshold.to(at::kFloat).cpu().contiguous());
    if (sae.w.W_skip.defined()) t.emplace_back("W_skip", sae.w.W_skip.to(at::kFloat).cpu().contiguous());
    Status st = write_safetensors((fs::path(dir) / "sae_weights.safetensors").string(), t);
    if (!st) throw InputError(st.error().message, st.error().code);
    write_file_atomic((fs::path(dir) / "cfg.json").string(), sae_cfg_json(sae, extra_metadata).dump(2) + "\n");
  });
}

}  // namespace ms
