// Gemma 2 (model_type "gemma2") and Gemma 3's text model ("gemma3_text", Gemma3ForCausalLM).
// Semantics: transformers' Gemma2 / Gemma3 modeling code (v4.50 to v5):
// - RMSNorm scales by (1 + w), computed in float32: the stored w is loaded as 1 + w (Conv::kPlusOne),
//   as TransformerLens does, and saved back as w;
// - embeddings times sqrt(hidden_size) in the compute dtype;
// - scores scaled by query_pre_attn_scalar^-1/2; Gemma 2 soft-caps them (cap * tanh(s / cap),
//   attn_logit_softcapping 50) before the mask and soft-caps the logits (final_logit_softcapping 30);
// - norms before and after attention and after the MLP too (input_layernorm, post_attention_layernorm,
//   pre_feedforward_layernorm, post_feedforward_layernorm: TransformerLens' ln1, ln1_post, ln2,
//   ln2_post); GeGLU with the tanh GELU; tied embeddings by default;
// - local (sliding-window) and global layers: layer_types when present, else Gemma 2's even layers
//   and Gemma 3's five of every six (sliding_window_pattern) are local;
// - GGUF: llama.cpp's gemma2 and gemma3 (text) files, norms stored as 1 + w, the attention scale as
//   llama.cpp derives it (d_head, or d_model / n_heads for the 27B models);
// - Gemma 3 adds q_norm / k_norm per head (1 + w) before RoPE, a RoPE base of its own on local
//   layers (rope_local_base_freq, no rope_scaling) and rope_scaling on global ones; soft-capping
//   off by default.
#include "core/model/arch/arch_spec.h"

namespace ms {
namespace {

ArchSpec make_gemma(bool v3) {
  ArchSpec a;
  a.model_type = v3 ? "gemma3_text" : "gemma2";
  a.hf_class = v3 ? "Gemma3ForCausalLM" : "Gemma2ForCausalLM";
  a.hf_prefix = "model.";
  a.structure.norm = NormKind::kRmsNorm;
  a.structure.pos = PosKind::kRotary;
  a.structure.gated_mlp = true;
  a.structure.post_norm = true;
  a.structure.embed_scaled = true;
  if (v3) a.structure.qk_norm = QkNorm::kPerHead;
  a.config = hf_decoder_config();
  set_field_default(a.config, Field::kDHead, 256, Save::kAlways);
  set_field_default(a.config, Field::kNCtx, v3 ? 131072 : 8192);
  set_field_default(a.config, Field::kAct, "gelu_pytorch_tanh");
  for (ConfigField& f : a.config)
    if (f.field == Field::kAct) f.keys = {"hidden_activation", "hidden_act"};
  set_field_default(a.config, Field::kTieEmbeddings, true);
  if (v3) set_field_default(a.config, Field::kRopeTheta, 1000000.0);
  a.config.push_back({Field::kAttnBias, {"attention_bias"}, false, Save::kIfNotDefault});
  a.config.push_back({Field::kQueryPreAttnScalar, {"query_pre_attn_scalar"}, 256});
  a.config.push_back({Field::kSlidingWindow, {"sliding_window"}, 4096});
  a.config.push_back({Field::kLayerTypes, {"layer_types"}, nullptr, Save::kSaver});
  a.config.push_back({Field::kSlidingPattern, {"sliding_window_pattern"}, v3 ? 6 : 2, Save::kNever});
  a.config.push_back({Field::kAttnSoftcap, {"attn_logit_softcapping"}, v3 ? nlohmann::json(nullptr) : nlohmann::json(50.0)});
  a.config.push_back({Field::kFinalSoftcap, {"final_logit_softcapping"}, v3 ? nlohmann::json(nullptr) : nlohmann::json(30.0)});
  if (v3) a.config.push_back({Field::kRopeLocalTheta, {"rope_local_base_freq"}, 10000.0});
  // GGUF (llama.cpp's gemma2 / gemma3): the norms hold 1 + w (Conv::kNone there); the sliding
  // window and soft-caps are keys, the local/global pattern (2, 6) and Gemma 3's local RoPE base
  // (10000 unless rope.freq_base_swa says otherwise) are fixed as the table's defaults fix them;
  // no local window when gemma3's sliding_window is absent or 0 (llama.cpp since late 2025).
  a.gguf_arch = v3 ? "gemma3" : "gemma2";
  a.gguf_config = {{Field::kSlidingWindow, "attention.sliding_window", v3 ? nlohmann::json(0) : nlohmann::json(nullptr)},
                   {Field::kFinalSoftcap, "final_logit_softcapping"}};
  if (v3) a.gguf_config.push_back({Field::kRopeLocalTheta, "rope.freq_base_swa"});
  else a.gguf_config.push_back({Field::kAttnSoftcap, "attn_logit_softcapping"});
  a.gguf_wide_scalar_layers = v3 ? 62 : 46;
  const When A = When::kAlways, QB = When::kQkvBias, OB = When::kOBias;
  const Conv P = Conv::kPlusOne;
  a.tensors = table_rows({
      {{Slot::kEmbed, Part::kAll, A, {"model.embed_tokens.weight"}, {"token_embd.weight"}},
       {Slot::kLn1W, Part::kAll, A, {"model.layers.{L}.input_layernorm.weight", P}, {"blk.{L}.attn_norm.weight"}}},
      hf_qkv_rows(QB),
      hf_o_rows(OB),
      {{Slot::kLn1PostW, Part::kAll, A, {"model.layers.{L}.post_attention_layernorm.weight", P}, {"blk.{L}.post_attention_norm.weight"}},
       {Slot::kLn2W, Part::kAll, A, {"model.layers.{L}.pre_feedforward_layernorm.weight", P}, {"blk.{L}.ffn_norm.weight"}}},
      hf_gated_mlp_rows(),
      {{Slot::kLn2PostW, Part::kAll, A, {"model.layers.{L}.post_feedforward_layernorm.weight", P}, {"blk.{L}.post_ffw_norm.weight"}},
       {Slot::kFinalNormW, Part::kAll, A, {"model.norm.weight", P}, {"output_norm.weight"}},
       {Slot::kUnembed, Part::kAll, When::kUntied, {"lm_head.weight"}, {v3 ? "output.weight" : nullptr}}},
  });
  if (v3) {  // q_norm / k_norm after the projections, in Gemma 3's file order
    auto at = a.tensors.begin() + 10;  // after o_proj's bias
    a.tensors.insert(at, {{Slot::kQNormW, Part::kAll, A, {"model.layers.{L}.self_attn.q_norm.weight", P}, {"blk.{L}.attn_q_norm.weight"}},
                          {Slot::kKNormW, Part::kAll, A, {"model.layers.{L}.self_attn.k_norm.weight", P}, {"blk.{L}.attn_k_norm.weight"}}});
  }
  return a;
}

}  // namespace

std::vector<const ArchSpec*> arch_family_gemma() {
  static const ArchSpec gemma2 = make_gemma(false), gemma3 = make_gemma(true);
  return {&gemma2, &gemma3};
}

}  // namespace ms
