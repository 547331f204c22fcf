// GPT-NeoX / Pythia (model_type "gpt_neox"): LayerNorm, partial rotary, parallel or sequential
// residual, GELU MLP; q, k and v fused per head in one query_key_value tensor.
#include "core/model/arch/arch_spec.h"

namespace ms {
namespace {

ArchSpec make_neox() {
  ArchSpec a;
  a.model_type = "gpt_neox";
  a.hf_class = "GPTNeoXForCausalLM";
  a.hf_prefix = "gpt_neox.";
  a.structure.norm = NormKind::kLayerNorm;
  a.structure.pos = PosKind::kRotary;
  a.structure.mlp_bias = true;
  a.config = {
      required_field(Field::kDModel, {"hidden_size"}),
      required_field(Field::kNLayers, {"num_hidden_layers"}),
      required_field(Field::kNHeads, {"num_attention_heads"}),
      {Field::kDMlp, {"intermediate_size"}, nullptr},
      required_field(Field::kDVocab, {"vocab_size"}),
      {Field::kNCtx, {"max_position_embeddings"}, 2048},
      {Field::kNormEps, {"layer_norm_eps"}, 1e-5},
      {Field::kAct, {"hidden_act"}, "gelu"},
      {Field::kRotaryFraction, {"rotary_pct", "partial_rotary_factor"}, 0.25},
      {Field::kRopeTheta, {"rotary_emb_base", "rope_theta"}, 10000.0},
      {Field::kParallelResidual, {"use_parallel_residual"}, true},
      {Field::kAttnBias, {"attention_bias"}, true, Save::kIfNotDefault},
      {Field::kTieEmbeddings, {"tie_word_embeddings"}, false},
  };
  a.random_overrides = {{"rotary_emb_base", 10000}};
  const Conv N = Conv::kNeoxQkv;
  const When A = When::kAlways;
  a.tensors = {
      {Slot::kEmbed, Part::kAll, A, {"gpt_neox.embed_in.weight"}, {}},
      {Slot::kLn1W, Part::kAll, A, {"gpt_neox.layers.{L}.input_layernorm.weight"}, {}},
      {Slot::kLn1B, Part::kAll, A, {"gpt_neox.layers.{L}.input_layernorm.bias"}, {}},
      {Slot::kQkvW, Part::kAll, A, {"gpt_neox.layers.{L}.attention.query_key_value.weight", N}, {}},
      {Slot::kQkvB, Part::kAll, When::kQkvBias, {"gpt_neox.layers.{L}.attention.query_key_value.bias", N}, {}},
      {Slot::kOW, Part::kAll, A, {"gpt_neox.layers.{L}.attention.dense.weight"}, {}},
      {Slot::kOB, Part::kAll, When::kOBias, {"gpt_neox.layers.{L}.attention.dense.bias"}, {}},
      {Slot::kLn2W, Part::kAll, A, {"gpt_neox.layers.{L}.post_attention_layernorm.weight"}, {}},
      {Slot::kLn2B, Part::kAll, A, {"gpt_neox.layers.{L}.post_attention_layernorm.bias"}, {}},
      {Slot::kInW, Part::kAll, A, {"gpt_neox.layers.{L}.mlp.dense_h_to_4h.weight"}, {}},
      {Slot::kInB, Part::kAll, A, {"gpt_neox.layers.{L}.mlp.dense_h_to_4h.bias"}, {}},
      {Slot::kOutW, Part::kAll, A, {"gpt_neox.layers.{L}.mlp.dense_4h_to_h.weight"}, {}},
      {Slot::kOutB, Part::kAll, A, {"gpt_neox.layers.{L}.mlp.dense_4h_to_h.bias"}, {}},
      {Slot::kFinalNormW, Part::kAll, A, {"gpt_neox.final_layer_norm.weight"}, {}},
      {Slot::kFinalNormB, Part::kAll, A, {"gpt_neox.final_layer_norm.bias"}, {}},
      {Slot::kUnembed, Part::kAll, When::kUntied, {"embed_out.weight"}, {}},
  };
  return a;
}

}  // namespace

std::vector<const ArchSpec*> arch_family_gpt_neox() {
  static const ArchSpec neox = make_neox();
  return {&neox};
}

}  // namespace ms
