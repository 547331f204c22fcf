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
  a.tensors = {
      {Slot::kEmbed, Part::kAll, A, {"model.embed_tokens.weight"}, {"token_embd.weight"}},
      {Slot::kLn1W, Part::kAll, A, {"model.layers.{L}.input_layernorm.weight"}, {"blk.{L}.attn_norm.weight"}},
      {Slot::kQkvW, Part::kQ, A, {"model.layers.{L}.self_attn.q_proj.weight"}, {"blk.{L}.attn_q.weight", M}},
      {Slot::kQkvW, Part::kK, A, {"model.layers.{L}.self_attn.k_proj.weight"}, {"blk.{L}.attn_k.weight", M}},
      {Slot::kQkvW, Part::kV, A, {"model.layers.{L}.self_attn.v_proj.weight"}, {"blk.{L}.attn_v.weight"}},
      {Slot::kQkvB, Part::kQ, When::kQkvBias, {"model.layers.{L}.self_attn.q_proj.bias"}, {}},
      {Slot::kQkvB, Part::kK, When::kQkvBias, {"model.layers.{L}.self_attn.k_proj.bias"}, {}},
      {Slot::kQkvB, Part::kV, When::kQkvBias, {"model.layers.{L}.self_attn.v_proj.bias"}, {}},
      {Slot::kOW, Part::kAll, A, {"model.layers.{L}.self_attn.o_proj.weight"}, {"blk.{L}.attn_output.weight"}},
      {Slot::kOB, Part::kAll, When::kOBias, {"model.layers.{L}.self_attn.o_proj.bias"}, {}},
      {Slot::kLn2W, Part::kAll, A, {"model.layers.{L}.post_attention_layernorm.weight"}, {"blk.{L}.ffn_norm.weight"}},
      {Slot::kInW, Part::kGate, A, {"model.layers.{L}.mlp.gate_proj.weight"}, {"blk.{L}.ffn_gate.weight"}},
      {Slot::kInW, Part::kUp, A, {"model.layers.{L}.mlp.up_proj.weight"}, {"blk.{L}.ffn_up.weight"}},
      {Slot::kOutW, Part::kAll, A, {"model.layers.{L}.mlp.down_proj.weight"}, {"blk.{L}.ffn_down.weight"}},
      {Slot::kInB, Part::kGate, When::kMlpBias, {"model.layers.{L}.mlp.gate_proj.bias"}, {}},
      {Slot::kInB, Part::kUp, When::kMlpBias, {"model.layers.{L}.mlp.up_proj.bias"}, {}},
      {Slot::kOutB, Part::kAll, When::kMlpBias, {"model.layers.{L}.mlp.down_proj.bias"}, {}},
      {Slot::kFinalNormW, Part::kAll, A, {"model.norm.weight"}, {"output_norm.weight"}},
      {Slot::kUnembed, Part::kAll, When::kUntied, {"lm_head.weight"}, {"output.weight"}},
  };
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
