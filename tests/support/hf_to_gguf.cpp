// The test converter from Hugging Face folders to GGUF (hf_to_gguf.h): names by gguf-py's tensor
// map, metadata by each model class's set_gguf_parameters, data by its modify_tensors.
#include "tests/support/hf_to_gguf.h"

#include <ATen/ATen.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/io/safetensors.h"
#include "tests/support/ggml_quantize.h"
#include "tests/support/gguf_builder.h"
#include "tests/support/test_support.h"

namespace ms::test {
namespace {

using json = nlohmann::json;

[[noreturn]] void refuse(const std::string& why) { throw std::runtime_error("convert_hf_to_gguf: " + why); }

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// gguf-py's names for a block's tensors ("self_attn.q_proj" -> "attn_q"), per family where they
// differ: Gemma's post_attention_layernorm follows attention (post_attention_norm); elsewhere it
// is the norm before the MLP (ffn_norm).
std::string block_name(const std::string& family, const std::string& module) {
  const bool gemma = starts_with(family, "gemma");
  static const std::vector<std::pair<std::string, std::string>> llama_like = {
      {"input_layernorm", "attn_norm"},        {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},          {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},     {"self_attn.qkv_proj", "attn_qkv"},
      {"self_attn.q_norm", "attn_q_norm"},     {"self_attn.k_norm", "attn_k_norm"},
      {"mlp.gate_proj", "ffn_gate"},           {"mlp.up_proj", "ffn_up"},
      {"mlp.gate_up_proj", "ffn_up"},          {"mlp.down_proj", "ffn_down"},
      {"pre_feedforward_layernorm", "ffn_norm"}, {"post_feedforward_layernorm", "post_ffw_norm"},
  };
  static const std::vector<std::pair<std::string, std::string>> gpt2 = {
      {"ln_1", "attn_norm"}, {"attn.c_attn", "attn_qkv"}, {"attn.c_proj", "attn_output"},
      {"ln_2", "ffn_norm"},  {"mlp.c_fc", "ffn_up"},      {"mlp.c_proj", "ffn_down"},
  };
  if (module == "post_attention_layernorm") return gemma ? "post_attention_norm" : "ffn_norm";
  for (const auto& [hf, gg] : family == "gpt2" ? gpt2 : llama_like)
    if (module == hf) return gg;
  refuse("no GGUF name for block tensor '" + module + "' of " + family);
}

// The GGUF name of a stored tensor, "" to leave it out.
std::string gguf_name(const std::string& family, std::string name) {
  for (const char* prefix : {"model.", "transformer."})
    if (starts_with(name, prefix)) name = name.substr(std::string(prefix).size());
  std::string suffix;
  for (const char* s : {".weight", ".bias"})
    if (ends_with(name, s)) {
      suffix = s;
      name = name.substr(0, name.size() - suffix.size());
    }
  if (family == "gpt2" && (ends_with(name, ".attn") || ends_with(name, ".attn.masked_bias"))) return "";
  if (family == "gemma2" && name == "lm_head") return "";  // tied; the converter skips it
  for (const char* layers : {"layers.", "h."}) {
    if (!starts_with(name, layers)) continue;
    const size_t dot = name.find('.', std::string(layers).size());
    const std::string bid = name.substr(std::string(layers).size(), dot - std::string(layers).size());
    return "blk." + bid + "." + block_name(family, name.substr(dot + 1)) + suffix;
  }
  static const std::vector<std::pair<std::string, std::string>> global = {
      {"embed_tokens", "token_embd"}, {"wte", "token_embd"},   {"wpe", "position_embd"},
      {"norm", "output_norm"},        {"ln_f", "output_norm"}, {"lm_head", "output"},
  };
  for (const auto& [hf, gg] : global)
    if (name == hf) return gg + suffix;
  refuse("no GGUF name for '" + name + suffix + "'");
}

// What modify_tensors does to the data: Gemma's norms get + 1 (RMSNorm's 1 + w, stored so);
// GPT-2's Conv1D weights are transposed to [out, in].
at::Tensor convert_data(const std::string& family, const std::string& hf_name, at::Tensor t) {
  if (starts_with(family, "gemma") && ends_with(hf_name, "norm.weight")) t = t + 1;
  if (family == "gpt2" && t.dim() == 2 &&
      (ends_with(hf_name, "c_attn.weight") || ends_with(hf_name, "c_proj.weight") || ends_with(hf_name, "c_fc.weight")))
    t = t.t();
  return t.contiguous();
}

double num(const json& c, const char* key, double fallback) {
  return c.contains(key) && !c.at(key).is_null() ? c.at(key).get<double>() : fallback;
}
int64_t integer(const json& c, const char* key) {
  if (!c.contains(key) || c.at(key).is_null()) refuse(std::string("config.json lacks '") + key + "'");
  return c.at(key).get<int64_t>();
}

// Gemma: what llama.cpp derives instead of reading must be what the folder says.
void check_gemma(const std::string& family, const json& c) {
  const bool v3 = family == "gemma3_text";
  const int64_t d = integer(c, "hidden_size"), h = integer(c, "num_attention_heads");
  const int64_t layers = integer(c, "num_hidden_layers");
  const int64_t d_head = c.value("head_dim", int64_t{256});
  const int64_t wide_layers = v3 ? 62 : 46;
  const double derived = static_cast<double>(layers == wide_layers ? d / h : d_head);
  if (num(c, "query_pre_attn_scalar", 256) != derived)
    refuse("query_pre_attn_scalar " + std::to_string(num(c, "query_pre_attn_scalar", 256)) +
           " is not what llama.cpp derives (" + std::to_string(derived) + ")");
  const int64_t period = v3 ? 6 : 2;
  if (c.contains("layer_types") && c.at("layer_types").is_array())
    for (int64_t l = 0; l < layers; ++l) {
      const bool local = c.at("layer_types").at(static_cast<size_t>(l)) == "sliding_attention";
      if (local != (l % period < period - 1)) refuse("layer_types differ from llama.cpp's fixed pattern");
    }
  if (v3 && num(c, "rope_local_base_freq", 10000.0) != 10000.0)
    refuse("rope_local_base_freq differs from llama.cpp's fixed 10000");
  if (!v3 && num(c, "rope_theta", 10000.0) != 10000.0) refuse("gemma2's converter writes no rope_theta");
}

}  // namespace

void convert_hf_to_gguf(const std::string& hf_dir, const std::string& gguf_path) {
  const json c = json::parse(read_file(hf_dir + "/config.json"));
  const std::string family = c.at("model_type").get<std::string>();
  static const std::vector<std::pair<std::string, std::string>> archs = {
      {"qwen2", "qwen2"}, {"qwen3", "qwen3"}, {"gemma2", "gemma2"}, {"gemma3_text", "gemma3"},
      {"phi3", "phi3"},   {"gpt2", "gpt2"}};
  std::string arch;
  for (const auto& [type, a] : archs)
    if (type == family) arch = a;
  if (arch.empty()) refuse("model_type '" + family + "' is not one this converter knows");
  const std::string p = arch + ".";

  GgufBuilder b;
  b.kv_str("general.architecture", arch);
  b.kv_str("general.name", "random " + family);
  b.kv_u32("general.file_type", 0);  // all F32
  if (family == "gpt2") {  // GPT2Model.set_gguf_parameters
    const int64_t d = integer(c, "n_embd");
    b.kv_u32(p + "block_count", static_cast<uint32_t>(integer(c, "n_layer")));
    b.kv_u32(p + "context_length", static_cast<uint32_t>(integer(c, c.contains("n_ctx") ? "n_ctx" : "n_positions")));
    b.kv_u32(p + "embedding_length", static_cast<uint32_t>(d));
    b.kv_u32(p + "feed_forward_length", static_cast<uint32_t>(4 * d));
    b.kv_u32(p + "attention.head_count", static_cast<uint32_t>(integer(c, "n_head")));
    b.kv_f32(p + "attention.layer_norm_epsilon", static_cast<float>(num(c, "layer_norm_epsilon", 1e-5)));
    if (c.contains("n_inner") && !c.at("n_inner").is_null() && c.at("n_inner").get<int64_t>() != 4 * d)
      refuse("GPT-2's converter writes feed_forward_length 4 * n_embd");
  } else {  // TextModel.set_gguf_parameters, then the family's additions
    b.kv_u32(p + "block_count", static_cast<uint32_t>(integer(c, "num_hidden_layers")));
    b.kv_u32(p + "context_length", static_cast<uint32_t>(integer(c, "max_position_embeddings")));
    b.kv_u32(p + "embedding_length", static_cast<uint32_t>(integer(c, "hidden_size")));
    b.kv_u32(p + "feed_forward_length", static_cast<uint32_t>(integer(c, "intermediate_size")));
    b.kv_u32(p + "attention.head_count", static_cast<uint32_t>(integer(c, "num_attention_heads")));
    if (c.contains("num_key_value_heads"))
      b.kv_u32(p + "attention.head_count_kv", static_cast<uint32_t>(integer(c, "num_key_value_heads")));
    b.kv_f32(p + "attention.layer_norm_rms_epsilon", static_cast<float>(num(c, "rms_norm_eps", 1e-6)));
    if (c.contains("head_dim")) {
      b.kv_u32(p + "attention.key_length", static_cast<uint32_t>(integer(c, "head_dim")));
      b.kv_u32(p + "attention.value_length", static_cast<uint32_t>(integer(c, "head_dim")));
    }
    if (family != "gemma2" && c.contains("rope_theta"))
      b.kv_f32(p + "rope.freq_base", static_cast<float>(num(c, "rope_theta", 10000.0)));
    if (starts_with(family, "gemma")) {
      check_gemma(family, c);
      b.kv_u32(p + "attention.sliding_window", static_cast<uint32_t>(integer(c, "sliding_window")));
      for (const char* cap : {"attn_logit_softcapping", "final_logit_softcapping"})
        if (c.contains(cap) && !c.at(cap).is_null()) {
          if (family == "gemma3_text" && std::string(cap) == "attn_logit_softcapping")
            refuse("llama.cpp's gemma3 has no attention soft-capping");
          b.kv_f32(p + cap, static_cast<float>(c.at(cap).get<double>()));
        }
    }
    if (family == "phi3") {  // Phi3MiniModel.set_gguf_parameters
      const int64_t d = integer(c, "hidden_size"), h = integer(c, "num_attention_heads");
      const double rot = num(c, "partial_rotary_factor", 1.0);
      b.kv_u32(p + "rope.dimension_count", static_cast<uint32_t>(static_cast<int64_t>(rot * static_cast<double>(d)) / h));
      b.kv_u32(p + "rope.scaling.original_context_length", static_cast<uint32_t>(integer(c, "max_position_embeddings")));
      if (c.contains("sliding_window") && !c.at("sliding_window").is_null())
        b.kv_u32(p + "attention.sliding_window", static_cast<uint32_t>(integer(c, "sliding_window")));
    }
    if (c.contains("rope_scaling") && !c.at("rope_scaling").is_null()) {
      const json& rs = c.at("rope_scaling");
      if (rs.value("rope_type", rs.value("type", std::string())) != "linear") refuse("rope_scaling other than linear");
      b.kv_str(p + "rope.scaling.type", "linear");
      b.kv_f32(p + "rope.scaling.factor", static_cast<float>(rs.at("factor").get<double>()));
    }
  }

  auto ck = SafetensorsCheckpoint::open_dir(hf_dir);
  if (!ck.ok()) refuse(ck.error().message);
  for (const std::string& name : (*ck)->names()) {
    const std::string gg = gguf_name(family, name);
    if (gg.empty()) continue;
    at::Tensor t = convert_data(family, name, to_tensor(*(*ck)->find(name), at::kFloat));
    std::vector<uint64_t> ne(t.sizes().rbegin(), t.sizes().rend());
    const std::string bytes(reinterpret_cast<const char*>(t.data_ptr<float>()), static_cast<size_t>(t.numel()) * 4);
    b.tensor(gg, ne, kGgmlF32, bytes);
    if (family == "gpt2" && gg == "token_embd.weight") b.tensor("output.weight", ne, kGgmlF32, bytes);
  }
  write_file(gguf_path, b.build());
}

}  // namespace ms::test
