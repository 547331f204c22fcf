// Llama (model_type "llama") and Mistral ("mistral": Llama + sliding-window attention): RMSNorm,
// rotary positions, SwiGLU MLP, grouped-query attention; also GGUF files of architecture llama
// (llama.cpp's names, q/k rows in Meta's RoPE order).
#include "core/model/arch/arch_spec.h"

namespace ms {
namespace {

std::vector<ConfigField> llama_config(Save bias_save) {
  std::vector<ConfigField> c = hf_decoder_config();
  c.push_back({Field::kAttnBias, {"attention_bias"}, false, bias_save});
  c.push_back({Field::kMlpBias, {"mlp_bias"}, false, bias_save});
  return c;
}

ArchSpec make_llama_like(const char* type, const char* cls) {
  ArchSpec a;
  a.model_type = type;
  a.hf_class = cls;
  a.hf_prefix = "model.";
  a.structure.norm = NormKind::kRmsNorm;
  a.structure.pos = PosKind::kRotary;
  a.structure.gated_mlp = true;
  a.random_overrides = {{"rms_norm_eps", 1e-5}};
  const Conv M = Conv::kMetaRope;
  const When A = When::kAlways;
  a.tensors = table_rows({
      {{Slot::kEmbed, Part::kAll, A, {"model.embed_tokens.weight"}, {"token_embd.weight"}},
       {Slot::kLn1W, Part::kAll, A, {"model.layers.{L}.input_layernorm.weight"}, {"blk.{L}.attn_norm.weight"}}},
      hf_qkv_rows(When::kQkvBias, M, false),
      hf_o_rows(When::kOBias, false),
      {{Slot::kLn2W, Part::kAll, A, {"model.layers.{L}.post_attention_layernorm.weight"}, {"blk.{L}.ffn_norm.weight"}}},
      hf_gated_mlp_rows(),
      {{Slot::kInB, Part::kGate, When::kMlpBias, {"model.layers.{L}.mlp.gate_proj.bias"}, {}},
       {Slot::kInB, Part::kUp, When::kMlpBias, {"model.layers.{L}.mlp.up_proj.bias"}, {}},
       {Slot::kOutB, Part::kAll, When::kMlpBias, {"model.layers.{L}.mlp.down_proj.bias"}, {}},
       {Slot::kFinalNormW, Part::kAll, A, {"model.norm.weight"}, {"output_norm.weight"}},
       {Slot::kUnembed, Part::kAll, When::kUntied, {"lm_head.weight"}, {"output.weight"}}},
  });
  return a;
}

ArchSpec make_llama() {
  ArchSpec a = make_llama_like("llama", "LlamaForCausalLM");
  a.gguf_arch = "llama";
  a.config = llama_config(Save::kSaver);
  return a;
}

// Mistral's config class has no bias fields (read anyway, written only when set) and a
// sliding window (null: none).
ArchSpec make_mistral() {
  ArchSpec a = make_llama_like("mistral", "MistralForCausalLM");
  a.config = llama_config(Save::kIfNotDefault);
  a.config.push_back({Field::kSlidingWindow, {"sliding_window"}, nullptr});
  return a;
}

}  // namespace

std::vector<const ArchSpec*> arch_family_llama() {
  static const ArchSpec llama = make_llama(), mistral = make_mistral();
  return {&llama, &mistral};
}

}  // namespace ms
