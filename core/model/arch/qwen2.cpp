// Qwen2 (model_type "qwen2"): the Llama structure with biases on q, k and v (none on the output
// projection or the MLP); its per-layer sliding window (use_sliding_window) is refused. GGUF:
// llama.cpp's qwen2 (no RoPE permutation of q/k, unlike llama).
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
  a.gguf_arch = "qwen2";
  a.config = hf_decoder_config();
  a.refused = {{"use_sliding_window", true, "qwen2 with use_sliding_window true is not supported"}};
  a.random_overrides = {{"rms_norm_eps", 1e-5}};
  const When A = When::kAlways, B = When::kQkvBias;
  a.tensors = {
      {Slot::kEmbed, Part::kAll, A, {"model.embed_tokens.weight"}, {"token_embd.weight"}},
      {Slot::kLn1W, Part::kAll, A, {"model.layers.{L}.input_layernorm.weight"}, {"blk.{L}.attn_norm.weight"}},
      {Slot::kQkvW, Part::kQ, A, {"model.layers.{L}.self_attn.q_proj.weight"}, {"blk.{L}.attn_q.weight"}},
      {Slot::kQkvW, Part::kK, A, {"model.layers.{L}.self_attn.k_proj.weight"}, {"blk.{L}.attn_k.weight"}},
      {Slot::kQkvW, Part::kV, A, {"model.layers.{L}.self_attn.v_proj.weight"}, {"blk.{L}.attn_v.weight"}},
      {Slot::kQkvB, Part::kQ, B, {"model.layers.{L}.self_attn.q_proj.bias"}, {"blk.{L}.attn_q.bias"}},
      {Slot::kQkvB, Part::kK, B, {"model.layers.{L}.self_attn.k_proj.bias"}, {"blk.{L}.attn_k.bias"}},
      {Slot::kQkvB, Part::kV, B, {"model.layers.{L}.self_attn.v_proj.bias"}, {"blk.{L}.attn_v.bias"}},
      {Slot::kOW, Part::kAll, A, {"model.layers.{L}.self_attn.o_proj.weight"}, {"blk.{L}.attn_output.weight"}},
      {Slot::kLn2W, Part::kAll, A, {"model.layers.{L}.post_attention_layernorm.weight"}, {"blk.{L}.ffn_norm.weight"}},
      {Slot::kInW, Part::kGate, A, {"model.layers.{L}.mlp.gate_proj.weight"}, {"blk.{L}.ffn_gate.weight"}},
      {Slot::kInW, Part::kUp, A, {"model.layers.{L}.mlp.up_proj.weight"}, {"blk.{L}.ffn_up.weight"}},
      {Slot::kOutW, Part::kAll, A, {"model.layers.{L}.mlp.down_proj.weight"}, {"blk.{L}.ffn_down.weight"}},
      {Slot::kFinalNormW, Part::kAll, A, {"model.norm.weight"}, {"output_norm.weight"}},
      {Slot::kUnembed, Part::kAll, When::kUntied, {"lm_head.weight"}, {"output.weight"}},
  };
  return a;
}

}  // namespace

std::vector<const ArchSpec*> arch_family_qwen2() {
  static const ArchSpec qwen2 = make_qwen2();
  return {&qwen2};
}

}  // namespace ms
