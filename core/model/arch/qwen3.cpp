// Qwen3 (model_type "qwen3"): the Llama structure plus an RMSNorm of each query and key head
// (q_norm, k_norm over head_dim) before RoPE; head_dim is explicit (default 128); optional
// biases on the four attention projections (attention_bias); tied or untied embeddings. Its
// per-layer sliding window (use_sliding_window) is refused. Semantics: transformers' Qwen3
// modeling code (v4.51 to v5). GGUF: llama.cpp's qwen3 (head_dim as attention.key_length; biases
// when their tensors are there).
#include "core/model/arch/arch_spec.h"

namespace ms {
namespace {

ArchSpec make_qwen3() {
  ArchSpec a;
  a.model_type = "qwen3";
  a.hf_class = "Qwen3ForCausalLM";
  a.hf_prefix = "model.";
  a.structure.norm = NormKind::kRmsNorm;
  a.structure.pos = PosKind::kRotary;
  a.structure.gated_mlp = true;
  a.structure.qk_norm = QkNorm::kPerHead;
  a.gguf_arch = "qwen3";
  a.config = hf_decoder_config();
  set_field_default(a.config, Field::kDHead, 128, Save::kAlways);
  set_field_default(a.config, Field::kNCtx, 32768);
  a.config.push_back({Field::kAttnBias, {"attention_bias"}, false});
  a.refused = {{"use_sliding_window", true, "qwen3 with use_sliding_window true is not supported"}};
  const When A = When::kAlways, QB = When::kQkvBias, OB = When::kOBias;
  a.tensors = table_rows({
      {{Slot::kEmbed, Part::kAll, A, {"model.embed_tokens.weight"}, {"token_embd.weight"}},
       {Slot::kLn1W, Part::kAll, A, {"model.layers.{L}.input_layernorm.weight"}, {"blk.{L}.attn_norm.weight"}}},
      hf_qkv_rows(QB),
      {{Slot::kQNormW, Part::kAll, A, {"model.layers.{L}.self_attn.q_norm.weight"}, {"blk.{L}.attn_q_norm.weight"}},
       {Slot::kKNormW, Part::kAll, A, {"model.layers.{L}.self_attn.k_norm.weight"}, {"blk.{L}.attn_k_norm.weight"}}},
      hf_o_rows(OB),
      {{Slot::kLn2W, Part::kAll, A, {"model.layers.{L}.post_attention_layernorm.weight"}, {"blk.{L}.ffn_norm.weight"}}},
      hf_gated_mlp_rows(),
      {{Slot::kFinalNormW, Part::kAll, A, {"model.norm.weight"}, {"output_norm.weight"}},
       {Slot::kUnembed, Part::kAll, When::kUntied, {"lm_head.weight"}, {"output.weight"}}},
  });
  return a;
}

}  // namespace

std::vector<const ArchSpec*> arch_family_qwen3() {
  static const ArchSpec qwen3 = make_qwen3();
  return {&qwen3};
}

}  // namespace ms
