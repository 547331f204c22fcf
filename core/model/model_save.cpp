// Saving canonical weights under Hugging Face's tensor names and config fields.
#include "core/model/model_save.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/safetensors.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

using Named = std::vector<std::pair<std::string, at::Tensor>>;

const char* act_hf_name(ActKind a) {
  switch (a) {
    case ActKind::kGeluNew: return "gelu_new";
    case ActKind::kGelu: return "gelu";
    case ActKind::kSilu: return "silu";
    case ActKind::kRelu: return "relu";
  }
  return "gelu_new";
}

at::Tensor f32(const at::Tensor& t) { return t.detach().to(at::kCPU, at::kFloat).contiguous(); }

// The MLP as stored: a zero one-unit MLP stands in for an attention-only model's missing one.
struct Mlp {
  at::Tensor w_in, b_in, w_out, b_out;
  int64_t d_mlp;
};
Mlp mlp_of(const ModelConfig& c, const LayerWeights& lw) {
  if (!c.attn_only()) return {lw.w_in, lw.b_in, lw.w_out, lw.b_out, c.d_mlp};
  const int64_t rows = c.gated_mlp ? 2 : 1;
  return {at::zeros({rows, c.d_model}), at::zeros({rows}), at::zeros({c.d_model, 1}), at::zeros({c.d_model}), 1};
}

at::Tensor ones_if_missing(const at::Tensor& t, int64_t n) { return t.defined() ? t : at::ones({n}); }
at::Tensor zeros_if_missing(const at::Tensor& t, int64_t n) { return t.defined() ? t : at::zeros({n}); }

Named gpt2_tensors(const ModelConfig& c, const ModelWeights& w) {
  Named out;
  const int64_t d = c.d_model;
  out.emplace_back("transformer.wte.weight", f32(w.w_e));
  out.emplace_back("transformer.wpe.weight", f32(w.w_pos));
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    Mlp m = mlp_of(c, lw);
    out.emplace_back(p + "ln_1.weight", f32(lw.ln1_w));
    out.emplace_back(p + "ln_1.bias", f32(zeros_if_missing(lw.ln1_b, d)));
    out.emplace_back(p + "attn.c_attn.weight", f32(lw.w_qkv.t()));
    out.emplace_back(p + "attn.c_attn.bias", f32(zeros_if_missing(lw.b_qkv, 3 * d)));
    out.emplace_back(p + "attn.c_proj.weight", f32(lw.w_o.t()));
    out.emplace_back(p + "attn.c_proj.bias", f32(zeros_if_missing(lw.b_o, d)));
    out.emplace_back(p + "ln_2.weight", f32(ones_if_missing(lw.ln2_w, d)));
    out.emplace_back(p + "ln_2.bias", f32(zeros_if_missing(lw.ln2_b, d)));
    out.emplace_back(p + "mlp.c_fc.weight", f32(m.w_in.t()));
    out.emplace_back(p + "mlp.c_fc.bias", f32(zeros_if_missing(m.b_in, m.d_mlp)));
    out.emplace_back(p + "mlp.c_proj.weight", f32(m.w_out.t()));
    out.emplace_back(p + "mlp.c_proj.bias", f32(zeros_if_missing(m.b_out, d)));
  }
  out.emplace_back("transformer.ln_f.weight", f32(w.ln_f_w));
  out.emplace_back("transformer.ln_f.bias", f32(zeros_if_missing(w.ln_f_b, d)));
  if (!c.tie_embeddings) out.emplace_back("lm_head.weight", f32(w.w_u));
  return out;
}

Named neox_tensors(const ModelConfig& c, const ModelWeights& w) {
  Named out;
  const int64_t d = c.d_model, h = c.n_heads, dh = c.d_head;
  out.emplace_back("gpt_neox.embed_in.weight", f32(w.w_e));
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    const std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
    out.emplace_back(p + "input_layernorm.weight", f32(lw.ln1_w));
    out.emplace_back(p + "input_layernorm.bias", f32(zeros_if_missing(lw.ln1_b, d)));
    // [q heads | k heads | v heads] back to NeoX's per-head [head, (q|k|v), d_head].
    out.emplace_back(p + "attention.query_key_value.weight",
                     f32(lw.w_qkv.reshape({3, h, dh, d}).permute({1, 0, 2, 3}).reshape({3 * h * dh, d})));
    out.emplace_back(p + "attention.query_key_value.bias",
                     f32(zeros_if_missing(lw.b_qkv, 3 * h * dh).reshape({3, h, dh}).permute({1, 0, 2}).reshape({-1})));
    out.emplace_back(p + "attention.dense.weight", f32(lw.w_o));
    out.emplace_back(p + "attention.dense.bias", f32(zeros_if_missing(lw.b_o, d)));
    Mlp m = mlp_of(c, lw);
    out.emplace_back(p + "post_attention_layernorm.weight", f32(ones_if_missing(lw.ln2_w, d)));
    out.emplace_back(p + "post_attention_layernorm.bias", f32(zeros_if_missing(lw.ln2_b, d)));
    out.emplace_back(p + "mlp.dense_h_to_4h.weight", f32(m.w_in));
    out.emplace_back(p + "mlp.dense_h_to_4h.bias", f32(zeros_if_missing(m.b_in, m.d_mlp)));
    out.emplace_back(p + "mlp.dense_4h_to_h.weight", f32(m.w_out));
    out.emplace_back(p + "mlp.dense_4h_to_h.bias", f32(zeros_if_missing(m.b_out, d)));
  }
  out.emplace_back("gpt_neox.final_layer_norm.weight", f32(w.ln_f_w));
  out.emplace_back("gpt_neox.final_layer_norm.bias", f32(zeros_if_missing(w.ln_f_b, d)));
  out.emplace_back("embed_out.weight", f32(w.w_u));
  return out;
}

Named llama_tensors(const ModelConfig& c, const ModelWeights& w) {
  Named out;
  const int64_t qd = c.q_dim(), kvd = c.kv_dim(), d = c.d_model;
  out.emplace_back("model.embed_tokens.weight", f32(w.w_e));
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.emplace_back(p + "input_layernorm.weight", f32(lw.ln1_w));
    out.emplace_back(p + "self_attn.q_proj.weight", f32(lw.w_qkv.narrow(0, 0, qd)));
    out.emplace_back(p + "self_attn.k_proj.weight", f32(lw.w_qkv.narrow(0, qd, kvd)));
    out.emplace_back(p + "self_attn.v_proj.weight", f32(lw.w_qkv.narrow(0, qd + kvd, kvd)));
    if (c.qkv_bias) {
      out.emplace_back(p + "self_attn.q_proj.bias", f32(lw.b_qkv.narrow(0, 0, qd)));
      out.emplace_back(p + "self_attn.k_proj.bias", f32(lw.b_qkv.narrow(0, qd, kvd)));
      out.emplace_back(p + "self_attn.v_proj.bias", f32(lw.b_qkv.narrow(0, qd + kvd, kvd)));
    }
    out.emplace_back(p + "self_attn.o_proj.weight", f32(lw.w_o));
    if (c.o_bias) out.emplace_back(p + "self_attn.o_proj.bias", f32(lw.b_o));
    Mlp m = mlp_of(c, lw);
    out.emplace_back(p + "post_attention_layernorm.weight", f32(ones_if_missing(lw.ln2_w, d)));
    out.emplace_back(p + "mlp.gate_proj.weight", f32(m.w_in.narrow(0, 0, m.d_mlp)));
    out.emplace_back(p + "mlp.up_proj.weight", f32(m.w_in.narrow(0, m.d_mlp, m.d_mlp)));
    out.emplace_back(p + "mlp.down_proj.weight", f32(m.w_out));
    if (c.mlp_bias) {
      out.emplace_back(p + "mlp.gate_proj.bias", f32(m.b_in.narrow(0, 0, m.d_mlp)));
      out.emplace_back(p + "mlp.up_proj.bias", f32(m.b_in.narrow(0, m.d_mlp, m.d_mlp)));
      out.emplace_back(p + "mlp.down_proj.bias", f32(m.b_out));
    }
  }
  out.emplace_back("model.norm.weight", f32(w.ln_f_w));
  if (!c.tie_embeddings) out.emplace_back("lm_head.weight", f32(w.w_u));
  return out;
}

}  // namespace

std::string hf_config_json(const ModelConfig& c) {
  using json = nlohmann::json;
  const int64_t d_mlp = c.attn_only() ? 1 : c.d_mlp;
  json j;
  if (c.model_type == "gpt2") {
    j = {{"model_type", "gpt2"}, {"architectures", {"GPT2LMHeadModel"}}, {"n_embd", c.d_model},
         {"n_layer", c.n_layers}, {"n_head", c.n_heads}, {"n_positions", c.n_ctx},
         {"n_ctx", c.n_ctx}, {"n_inner", d_mlp}, {"vocab_size", c.d_vocab},
         {"layer_norm_epsilon", c.norm_eps}, {"activation_function", act_hf_name(c.act)},
         {"tie_word_embeddings", c.tie_embeddings}};
  } else if (c.model_type == "gpt_neox") {
    j = {{"model_type", "gpt_neox"}, {"architectures", {"GPTNeoXForCausalLM"}},
         {"hidden_size", c.d_model}, {"num_hidden_layers", c.n_layers},
         {"num_attention_heads", c.n_heads}, {"intermediate_size", d_mlp},
         {"vocab_size", c.d_vocab}, {"max_position_embeddings", c.n_ctx},
         {"rotary_pct", static_cast<double>(c.rotary_dim) / static_cast<double>(c.d_head)},
         {"rotary_emb_base", c.rope_theta}, {"use_parallel_residual", c.parallel_attn_mlp},
         {"layer_norm_eps", c.norm_eps}, {"hidden_act", act_hf_name(c.act)},
         {"tie_word_embeddings", c.tie_embeddings}};
  } else if (c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2") {
    std::string cls = c.model_type == "llama" ? "LlamaForCausalLM"
                      : c.model_type == "mistral" ? "MistralForCausalLM" : "Qwen2ForCausalLM";
    j = {{"model_type", c.model_type}, {"architectures", {cls}}, {"hidden_size", c.d_model},
         {"num_hidden_layers", c.n_layers}, {"num_attention_heads", c.n_heads},
         {"num_key_value_heads", c.n_kv_heads}, {"head_dim", c.d_head},
         {"intermediate_size", d_mlp}, {"vocab_size", c.d_vocab},
         {"max_position_embeddings", c.n_ctx}, {"rms_norm_eps", c.norm_eps},
         {"rope_theta", c.rope_theta}, {"hidden_act", act_hf_name(c.act)},
         {"tie_word_embeddings", c.tie_embeddings}};
    if (c.model_type == "llama") {
      j["attention_bias"] = c.qkv_bias;
      j["mlp_bias"] = c.mlp_bias;
    }
    if (c.model_type == "mistral") j["sliding_window"] = c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
  } else {
    fail_usage("cannot save model_type '" + c.model_type + "'");
  }
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) j["eos_token_id"] = c.eos_token_id;
  j["torch_dtype"] = "float32";
  return j.dump(2) + "\n";
}

Status save_model_hf(const ModelConfig& c, const ModelWeights& w, const std::string& dir,
                     const std::map<std::string, std::string>& extra_files, bool overwrite) {
  return guard([&] {
    if (c.model_type == "llama" && (c.norm != NormKind::kRmsNorm || !c.gated_mlp))
      fail_usage("a llama model needs RMSNorm and a gated MLP");
    std::error_code ec;
    if (fs::exists(dir, ec) && !overwrite)
      fail_usage(dir + ": already exists (overwrite not allowed)");
    std::string text = hf_config_json(c);
    Named tensors = c.model_type == "gpt2" ? gpt2_tensors(c, w)
                    : c.model_type == "gpt_neox" ? neox_tensors(c, w) : llama_tensors(c, w);
    fs::path tmp = dir + ".tmp";
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) fail_input(tmp.string() + ": cannot create the folder: " + ec.message());
    auto write = [&](const std::string& name, const std::string& content) {
      std::ofstream f(tmp / name, std::ios::binary);
      f << content;
      if (!f.flush()) fail_input((tmp / name).string() + ": write failed");
    };
    write("config.json", text);
    for (const auto& [name, content] : extra_files) write(name, content);
    Status st = write_safetensors((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}});
    if (!st) throw InputError(st.error().message, st.error().code);
    fs::remove_all(dir, ec);
    fs::rename(tmp, dir, ec);
    if (ec) fail_input(dir + ": cannot move the saved model into place: " + ec.message());
  });
}

}  // namespace ms
