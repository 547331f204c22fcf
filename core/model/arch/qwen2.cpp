// Qwen2 (model_type "qwen2"): the Llama structure with biases on q, k and v (none on the output
// projection or the MLP); its per-layer sliding window (use_sliding_window) is refused.
#include "core/model/arch/arch_spec.h"

namespace ms {
namespace {

ArchSpec make_qwen2() {
  ArchSpec a;
  a.model_type = "qwen2";
  a.hf_class = "Qwen2ForCausalLM";
  a.hf_prefix = "model.";
  a.structure.norm = NormKind::kRmsNorm;
  a.structure.pos = PosKind::kRotary;
  a.structure.gated_mlp = true;
  a.structure.qkv_bias = true;
  a.config = hf_decoder_config();
  a.refused = {{"use_sliding_window", true, "qwen2 with use_sliding_window true is not supported"}};
  a.random_overrides = {{"rms_norm_eps", 1e-5}};
  const When A = When::kAlways, B = When::kQkvBias;
  a.tensors = {
      {Slot::kEmbed, Part::kAll, A, {"model.embed_tokens.weight"}, {}},
      {Slot::kLn1W, Part::kAll, A, {"model.layers.{L}.input_layernorm.weight"}, {}},
      {Slot::kQkvW, Part::kQ, A, {"model.layers.{L}.self_attn.q_proj.weight"}, {}},
      {Slot::kQkvW, Part::kK, A, {"model.layers.{L}.self_attn.k_proj.weight"}, {}},
      {Slot::kQkvW, Part::kV, A, {"model.layers.{L}.self_attn.v_proj.weight"}, {}},
      {Slot::kQkvB, Part::kQ, B, {"model.layers.{L}.self_attn.q_proj.bias"}, {}},
      {Slot::kQkvB, Part::kK, B, {"model.layers.{L}.self_attn.k_proj.bias"}, {}},
      {Slot::kQkvB, Part::kV, B, {"model.layers.{L}.self_attn.v_proj.bias"}, {}},
      {Slot::kOW, Part::kAll, A, {"model.layers.{L}.self_attn.o_proj.weight"}, {}},
      {Slot::kLn2W, Part::kAll, A, {"model.layers.{L}.post_attention_layernorm.weight"}, {}},
      {Slot::kInW, Part::kGate, A, {"model.layers.{L}.mlp.gate_proj.weight"}, {}},
      {Slot::kInW, Part::kUp, A, {"model.layers.{L}.mlp.up_proj.weight"}, {}},
      {Slot::kOutW, Part::kAll, A, {"model.layers.{L}.mlp.down_proj.weight"}, {}},
      {Slot::kFinalNormW, Part::kAll, A, {"model.norm.weight"}, {}},
      {Slot::kUnembed, Part::kAll, When::kUntied, {"lm_head.weight"}, {}},
  };
  return a;
}

}  // namespace

std::vector<const ArchSpec*> arch_family_qwen2() {
  static const ArchSpec qwen2 = make_qwen2();
  return {&qwen2};
}

}  // namespace ms
