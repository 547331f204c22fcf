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
  a.tensors = table_rows({
      {{Slot::kEmbed, Part::kAll, A, {"model.embed_tokens.weight"}, {"token_embd.weight"}},
       {Slot::kLn1W, Part::kAll, A, {"model.layers.{L}.input_layernorm.weight"}, {"blk.{L}.attn_norm.weight"}}},
      hf_qkv_rows(B),
      {{Slot::kOW, Part::kAll, A, {"model.layers.{L}.self_attn.o_proj.weight"}, {"blk.{L}.attn_output.weight"}}},
      {{Slot::kLn2W, Part::kAll, A, {"model.layers.{L}.post_attention_layernorm.weight"}, {"blk.{L}.ffn_norm.weight"}}},
      hf_gated_mlp_rows(),
      {{Slot::kFinalNormW, Part::kAll, A, {"model.norm.weight"}, {"output_norm.weight"}},
       {Slot::kUnembed, Part::kAll, When::kUntied, {"lm_head.weight"}, {"output.weight"}}},
  });
  return a;
}

}  // namespace

std::vector<const ArchSpec*> arch_family_qwen2() {
  static const ArchSpec qwen2 = make_qwen2();
  return {&qwen2};
}

}  // namespace ms
