// Phi-3 (model_type "phi3"): the Llama structure with q, k and v fused in one qkv_proj (all q
// rows, then k, then v: the canonical layout) and gate and up fused in one gate_up_proj (gate
// rows, then up); partial_rotary_factor; a sliding window on every layer when set. LongRoPE
// scaling (the 128k-context models) is refused. Semantics: transformers' Phi3 modeling code
// (v4.4x to v5). GGUF: llama.cpp's phi3 keeps the fused attn_qkv and ffn_up (gate | up); the sliding
// window is applied as transformers applies it (llama.cpp reads it but has run Phi-3 without one
// since its PR 13676).
#include "core/model/arch/arch_spec.h"

namespace ms {
namespace {

ArchSpec make_phi3() {
  ArchSpec a;
  a.model_type = "phi3";
  a.hf_class = "Phi3ForCausalLM";
  a.hf_prefix = "model.";
  a.structure.norm = NormKind::kRmsNorm;
  a.structure.pos = PosKind::kRotary;
  a.structure.gated_mlp = true;
  a.gguf_arch = "phi3";
  a.gguf_config = {{Field::kSlidingWindow, "attention.sliding_window"}};
  const char* longrope = "Phi-3 LongRoPE scaling (the 128k-context models: rope_factors_long / rope_factors_short) "
                         "is not supported; the 4k-context models of the family load";
  a.gguf_refused = {{"rope_factors_long.weight", longrope}, {"rope_factors_short.weight", longrope}};
  a.config = hf_decoder_config();
  set_field_default(a.config, Field::kNCtx, 4096);
  set_field_default(a.config, Field::kNormEps, 1e-5);
  a.config.push_back({Field::kRotaryFraction, {"partial_rotary_factor"}, 1.0, Save::kIfNotDefault});
  a.config.push_back({Field::kSlidingWindow, {"sliding_window"}, nullptr});
  const When A = When::kAlways;
  a.tensors = {
      {Slot::kEmbed, Part::kAll, A, {"model.embed_tokens.weight"}, {"token_embd.weight"}},
      {Slot::kLn1W, Part::kAll, A, {"model.layers.{L}.input_layernorm.weight"}, {"blk.{L}.attn_norm.weight"}},
      {Slot::kQkvW, Part::kAll, A, {"model.layers.{L}.self_attn.qkv_proj.weight"}, {"blk.{L}.attn_qkv.weight"}},
      {Slot::kOW, Part::kAll, A, {"model.layers.{L}.self_attn.o_proj.weight"}, {"blk.{L}.attn_output.weight"}},
      {Slot::kLn2W, Part::kAll, A, {"model.layers.{L}.post_attention_layernorm.weight"}, {"blk.{L}.ffn_norm.weight"}},
      {Slot::kInW, Part::kAll, A, {"model.layers.{L}.mlp.gate_up_proj.weight"}, {"blk.{L}.ffn_up.weight"}},
      {Slot::kOutW, Part::kAll, A, {"model.layers.{L}.mlp.down_proj.weight"}, {"blk.{L}.ffn_down.weight"}},
      {Slot::kFinalNormW, Part::kAll, A, {"model.norm.weight"}, {"output_norm.weight"}},
      {Slot::kUnembed, Part::kAll, When::kUntied, {"lm_head.weight"}, {"output.weight"}},
  };
  return a;
}

}  // namespace

std::vector<const ArchSpec*> arch_family_phi3() {
  static const ArchSpec phi3 = make_phi3();
  return {&phi3};
}

}  // namespace ms
