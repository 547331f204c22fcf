// OLMo 2 (model_type "olmo2"): no norms before attention or the MLP; an RMSNorm on each branch's
// output (post_attention_layernorm, post_feedforward_layernorm) before it joins the residual
// stream, and RMSNorms of the queries and keys over all heads together (q_norm [n_heads *
// head_dim], k_norm [n_kv_heads * head_dim]) before the split into heads and RoPE. Semantics:
// transformers' Olmo2 modeling code (v4.47 to v5).
#include "core/model/arch/arch_spec.h"

namespace ms {
namespace {

ArchSpec make_olmo2() {
  ArchSpec a;
  a.model_type = "olmo2";
  a.hf_class = "Olmo2ForCausalLM";
  a.hf_prefix = "model.";
  a.structure.norm = NormKind::kRmsNorm;
  a.structure.pos = PosKind::kRotary;
  a.structure.gated_mlp = true;
  a.structure.pre_norm = false;
  a.structure.post_norm = true;
  a.structure.qk_norm = QkNorm::kAllHeads;
  a.config = hf_decoder_config();
  set_field_default(a.config, Field::kNormEps, 1e-5);
  a.config.push_back({Field::kAttnBias, {"attention_bias"}, false});
  const When A = When::kAlways, QB = When::kQkvBias, OB = When::kOBias;
  a.tensors = table_rows({
      {{Slot::kEmbed, Part::kAll, A, {"model.embed_tokens.weight"}, {}}},
      hf_qkv_rows(QB),
      {{Slot::kQNormW, Part::kAll, A, {"model.layers.{L}.self_attn.q_norm.weight"}, {}},
       {Slot::kKNormW, Part::kAll, A, {"model.layers.{L}.self_attn.k_norm.weight"}, {}}},
      hf_o_rows(OB),
      {{Slot::kLn1PostW, Part::kAll, A, {"model.layers.{L}.post_attention_layernorm.weight"}, {}}},
      hf_gated_mlp_rows(),
      {{Slot::kLn2PostW, Part::kAll, A, {"model.layers.{L}.post_feedforward_layernorm.weight"}, {}},
       {Slot::kFinalNormW, Part::kAll, A, {"model.norm.weight"}, {}},
       {Slot::kUnembed, Part::kAll, When::kUntied, {"lm_head.weight"}, {}}},
  });
  return a;
}

}  // namespace

std::vector<const ArchSpec*> arch_family_olmo2() {
  static const ArchSpec olmo2 = make_olmo2();
  return {&olmo2};
}

}  // namespace ms
