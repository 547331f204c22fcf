// GPT-2 (model_type "gpt2"): LayerNorm, learned positions, GELU MLP, biases everywhere, tied
// embeddings; Hugging Face stores every projection as a Conv1D ([in, out], transposed here). GGUF:
// llama.cpp's gpt2, whose converter transposes them already and writes the tied output as output.weight.
#include "core/model/arch/arch_spec.h"

namespace ms {
namespace {

ArchSpec make_gpt2() {
  ArchSpec a;
  a.model_type = "gpt2";
  a.hf_class = "GPT2LMHeadModel";
  a.hf_prefix = "transformer.";
  a.gguf_arch = "gpt2";
  a.structure.norm = NormKind::kLayerNorm;
  a.structure.pos = PosKind::kLearned;
  a.structure.qkv_bias = a.structure.o_bias = a.structure.mlp_bias = true;
  a.config = {
      required_field(Field::kDModel, {"n_embd"}),
      required_field(Field::kNLayers, {"n_layer"}),
      required_field(Field::kNHeads, {"n_head"}),
      {Field::kDMlp, {"n_inner"}, nullptr},  // null in HF's config: 4 * n_embd
      required_field(Field::kDVocab, {"vocab_size"}),
      {Field::kNCtx, {"n_positions", "n_ctx"}, 1024, Save::kAlways, false, true},
      {Field::kNormEps, {"layer_norm_epsilon"}, 1e-5},
      {Field::kAct, {"activation_function"}, "gelu_new"},
      {Field::kTieEmbeddings, {"tie_word_embeddings"}, true},
  };
  const char* why = "GPT-2 attention scaling other than 1/sqrt(d_head) (scale_attn_weights false "
                    "or scale_attn_by_inverse_layer_idx true) is not supported";
  a.refused = {{"scale_attn_weights", false, why}, {"scale_attn_by_inverse_layer_idx", true, why}};
  const Conv T = Conv::kTranspose;
  const When A = When::kAlways;
  a.tensors = {
      {Slot::kEmbed, Part::kAll, A, {"transformer.wte.weight"}, {"token_embd.weight"}},
      {Slot::kPosEmbed, Part::kAll, A, {"transformer.wpe.weight"}, {"position_embd.weight"}},
      {Slot::kLn1W, Part::kAll, A, {"transformer.h.{L}.ln_1.weight"}, {"blk.{L}.attn_norm.weight"}},
      {Slot::kLn1B, Part::kAll, A, {"transformer.h.{L}.ln_1.bias"}, {"blk.{L}.attn_norm.bias"}},
      {Slot::kQkvW, Part::kAll, A, {"transformer.h.{L}.attn.c_attn.weight", T}, {"blk.{L}.attn_qkv.weight"}},
      {Slot::kQkvB, Part::kAll, A, {"transformer.h.{L}.attn.c_attn.bias"}, {"blk.{L}.attn_qkv.bias"}},
      {Slot::kOW, Part::kAll, A, {"transformer.h.{L}.attn.c_proj.weight", T}, {"blk.{L}.attn_output.weight"}},
      {Slot::kOB, Part::kAll, A, {"transformer.h.{L}.attn.c_proj.bias"}, {"blk.{L}.attn_output.bias"}},
      {Slot::kLn2W, Part::kAll, A, {"transformer.h.{L}.ln_2.weight"}, {"blk.{L}.ffn_norm.weight"}},
      {Slot::kLn2B, Part::kAll, A, {"transformer.h.{L}.ln_2.bias"}, {"blk.{L}.ffn_norm.bias"}},
      {Slot::kInW, Part::kAll, A, {"transformer.h.{L}.mlp.c_fc.weight", T}, {"blk.{L}.ffn_up.weight"}},
      {Slot::kInB, Part::kAll, A, {"transformer.h.{L}.mlp.c_fc.bias"}, {"blk.{L}.ffn_up.bias"}},
      {Slot::kOutW, Part::kAll, A, {"transformer.h.{L}.mlp.c_proj.weight", T}, {"blk.{L}.ffn_down.weight"}},
      {Slot::kOutB, Part::kAll, A, {"transformer.h.{L}.mlp.c_proj.bias"}, {"blk.{L}.ffn_down.bias"}},
      {Slot::kFinalNormW, Part::kAll, A, {"transformer.ln_f.weight"}, {"output_norm.weight"}},
      {Slot::kFinalNormB, Part::kAll, A, {"transformer.ln_f.bias"}, {"output_norm.bias"}},
      {Slot::kUnembed, Part::kAll, When::kUntied, {"lm_head.weight"}, {"output.weight"}},
  };
  return a;
}

}  // namespace

std::vector<const ArchSpec*> arch_family_gpt2() {
  static const ArchSpec gpt2 = make_gpt2();
  return {&gpt2};
}

}  // namespace ms
