// Random-weight models in the Hugging Face layout, named exactly as transformers saves them.
#include "core/zoo/zoo_random.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/safetensors.h"
#include "core/model/model_config.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

struct Maker {
  at::Generator gen;
  double std;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  bool dry = false;  // only the config: nothing allocated (checked before the weights are made)

  void normal(const std::string& name, std::vector<int64_t> shape) {
    if (!dry) tensors.emplace_back(name, at::normal(0.0, std, shape, gen, at::TensorOptions().dtype(at::kFloat)));
  }
  void fill(const std::string& name, std::vector<int64_t> shape, double v) {
    if (!dry) tensors.emplace_back(name, at::full(shape, v, at::TensorOptions().dtype(at::kFloat)));
  }
};

// GPT-NeoX's usual quarter of each head rotated, made even and at least 2 so that the loader's
// int(d_head * rotary_pct) is a valid rotary dimension for any head size (+ 0.5: exact under the
// truncation whatever the rounding of the division).
double neox_rotary_pct(int64_t d_head) {
  if (d_head % 8 == 0) return 0.25;
  const int64_t rotary = std::max<int64_t>(2, d_head / 4 / 2 * 2);
  return rotary >= d_head ? 1.0 : (static_cast<double>(rotary) + 0.5) / static_cast<double>(d_head);
}

nlohmann::json make_tensors(const RandomModelSpec& s, Maker& mk) {
  using json = nlohmann::json;
  const int64_t d = s.d_model, h = s.n_heads, dh = d / h;
  const int64_t kv = s.n_kv_heads > 0 ? s.n_kv_heads : h;
  json cfg;
  if (s.arch == "gpt2") {
    const int64_t ff = s.d_mlp > 0 ? s.d_mlp : 4 * d;
    cfg = {{"model_type", "gpt2"}, {"architectures", {"GPT2LMHeadModel"}}, {"n_embd", d},
           {"n_layer", s.n_layers}, {"n_head", h}, {"n_positions", s.n_ctx}, {"n_inner", ff},
           {"vocab_size", s.d_vocab}, {"layer_norm_epsilon", 1e-5},
           {"activation_function", "gelu_new"}, {"tie_word_embeddings", true}};
    mk.normal("transformer.wte.weight", {s.d_vocab, d});
    mk.normal("transformer.wpe.weight", {s.n_ctx, d});
    for (int64_t l = 0; l < s.n_layers; ++l) {
      const std::string p = "transformer.h." + std::to_string(l) + ".";
      mk.fill(p + "ln_1.weight", {d}, 1.0);
      mk.fill(p + "ln_1.bias", {d}, 0.0);
      mk.normal(p + "attn.c_attn.weight", {d, 3 * d});
      mk.fill(p + "attn.c_attn.bias", {3 * d}, 0.0);
      mk.normal(p + "attn.c_proj.weight", {d, d});
      mk.fill(p + "attn.c_proj.bias", {d}, 0.0);
      mk.fill(p + "ln_2.weight", {d}, 1.0);
      mk.fill(p + "ln_2.bias", {d}, 0.0);
      mk.normal(p + "mlp.c_fc.weight", {d, ff});
      mk.fill(p + "mlp.c_fc.bias", {ff}, 0.0);
      mk.normal(p + "mlp.c_proj.weight", {ff, d});
      mk.fill(p + "mlp.c_proj.bias", {d}, 0.0);
    }
    mk.fill("transformer.ln_f.weight", {d}, 1.0);
    mk.fill("transformer.ln_f.bias", {d}, 0.0);
  } else if (s.arch == "gpt_neox") {
    const int64_t ff = s.d_mlp > 0 ? s.d_mlp : 4 * d;
    cfg = {{"model_type", "gpt_neox"}, {"architectures", {"GPTNeoXForCausalLM"}},
           {"hidden_size", d}, {"num_hidden_layers", s.n_layers}, {"num_attention_heads", h},
           {"intermediate_size", ff}, {"vocab_size", s.d_vocab},
           {"max_position_embeddings", s.n_ctx}, {"rotary_pct", neox_rotary_pct(dh)},
           {"rotary_emb_base", 10000}, {"use_parallel_residual", true}, {"layer_norm_eps", 1e-5},
           {"hidden_act", "gelu"}, {"tie_word_embeddings", false}};
    mk.normal("gpt_neox.embed_in.weight", {s.d_vocab, d});
    for (int64_t l = 0; l < s.n_layers; ++l) {
      const std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
      mk.fill(p + "input_layernorm.weight", {d}, 1.0);
      mk.fill(p + "input_layernorm.bias", {d}, 0.0);
      mk.normal(p + "attention.query_key_value.weight", {3 * d, d});
      mk.fill(p + "attention.query_key_value.bias", {3 * d}, 0.0);
      mk.normal(p + "attention.dense.weight", {d, d});
      mk.fill(p + "attention.dense.bias", {d}, 0.0);
      mk.fill(p + "post_attention_layernorm.weight", {d}, 1.0);
      mk.fill(p + "post_attention_layernorm.bias", {d}, 0.0);
      mk.normal(p + "mlp.dense_h_to_4h.weight", {ff, d});
      mk.fill(p + "mlp.dense_h_to_4h.bias", {ff}, 0.0);
      mk.normal(p + "mlp.dense_4h_to_h.weight", {d, ff});
      mk.fill(p + "mlp.dense_4h_to_h.bias", {d}, 0.0);
    }
    mk.fill("gpt_neox.final_layer_norm.weight", {d}, 1.0);
    mk.fill("gpt_neox.final_layer_norm.bias", {d}, 0.0);
    mk.normal("embed_out.weight", {s.d_vocab, d});
  } else if (s.arch == "llama" || s.arch == "mistral" || s.arch == "qwen2") {
    const int64_t ff = s.d_mlp > 0 ? s.d_mlp : ((8 * d / 3 + 63) / 64) * 64;
    std::string cls = s.arch == "llama" ? "LlamaForCausalLM" : s.arch == "mistral" ? "MistralForCausalLM" : "Qwen2ForCausalLM";
    cfg = {{"model_type", s.arch}, {"architectures", {cls}}, {"hidden_size", d},
           {"num_hidden_layers", s.n_layers}, {"num_attention_heads", h},
           {"num_key_value_heads", kv}, {"intermediate_size", ff}, {"vocab_size", s.d_vocab},
           {"max_position_embeddings", s.n_ctx}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
           {"hidden_act", "silu"}, {"tie_word_embeddings", false}};
    if (s.arch == "mistral") cfg["sliding_window"] = nullptr;
    mk.normal("model.embed_tokens.weight", {s.d_vocab, d});
    for (int64_t l = 0; l < s.n_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      mk.fill(p + "input_layernorm.weight", {d}, 1.0);
      mk.normal(p + "self_attn.q_proj.weight", {h * dh, d});
      mk.normal(p + "self_attn.k_proj.weight", {kv * dh, d});
      mk.normal(p + "self_attn.v_proj.weight", {kv * dh, d});
      if (s.arch == "qwen2") {
        mk.fill(p + "self_attn.q_proj.bias", {h * dh}, 0.0);
        mk.fill(p + "self_attn.k_proj.bias", {kv * dh}, 0.0);
        mk.fill(p + "self_attn.v_proj.bias", {kv * dh}, 0.0);
      }
      mk.normal(p + "self_attn.o_proj.weight", {d, h * dh});
      mk.fill(p + "post_attention_layernorm.weight", {d}, 1.0);
      mk.normal(p + "mlp.gate_proj.weight", {ff, d});
      mk.normal(p + "mlp.up_proj.weight", {ff, d});
      mk.normal(p + "mlp.down_proj.weight", {d, ff});
    }
    mk.fill("model.norm.weight", {d}, 1.0);
    mk.normal("lm_head.weight", {s.d_vocab, d});
  } else {
    fail_usage("unknown architecture '" + s.arch + "' (gpt2, gpt_neox, llama, mistral, qwen2)");
  }
  return cfg;
}

}  // namespace

ModelWeights random_weights(const ModelConfig& c, uint64_t seed, double std) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  auto opts = at::TensorOptions().dtype(at::kFloat);
  auto rnd = [&](std::vector<int64_t> shape) { return at::normal(0.0, std, shape, gen, opts); };
  auto ones = [&](int64_t n) { return 1.0 + at::normal(0.0, std, {n}, gen, opts); };
  const bool ln = c.norm == NormKind::kLayerNorm;
  const int64_t d = c.d_model, qkv = c.q_dim() + 2 * c.kv_dim();
  ModelWeights w;
  w.w_e = rnd({c.d_vocab, d});
  if (c.pos == PosKind::kLearned) w.w_pos = rnd({c.n_ctx, d});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights lw;
    lw.ln1_w = ones(d);
    if (ln) lw.ln1_b = rnd({d});
    lw.w_qkv = rnd({qkv, d});
    if (c.qkv_bias) lw.b_qkv = rnd({qkv});
    lw.w_o = rnd({d, c.q_dim()});
    if (c.o_bias) lw.b_o = rnd({d});
    if (!c.attn_only()) {
      lw.ln2_w = ones(d);
      if (ln) lw.ln2_b = rnd({d});
      const int64_t in_rows = c.gated_mlp ? 2 * c.d_mlp : c.d_mlp;
      lw.w_in = rnd({in_rows, d});
      if (c.mlp_bias) lw.b_in = rnd({in_rows});
      lw.w_out = rnd({d, c.d_mlp});
      if (c.mlp_bias) lw.b_out = rnd({d});
    }
    w.layers.push_back(std::move(lw));
  }
  w.ln_f_w = ones(d);
  if (ln) w.ln_f_b = rnd({d});
  w.w_u = c.tie_embeddings ? w.w_e : rnd({c.d_vocab, d});
  return w;
}

Status write_random_model(const RandomModelSpec& s, const std::string& out_dir, bool force) {
  return guard([&] {
    if (s.n_layers <= 0 || s.d_model <= 0 || s.n_heads <= 0 || s.d_model % s.n_heads)
      fail_usage("random model: need positive sizes and d_model divisible by n_heads");
    fs::path out(out_dir);
    std::error_code ec;
    if (fs::exists(out, ec) && !fs::is_empty(out, ec) && !force)
      fail_usage(out_dir + ": folder exists and is not empty (use --force to replace it)");
    // The config first, through the loader's own parser: a size the loader would refuse (an odd
    // head dimension for rotary positions, key/value heads that do not divide the heads, sizes
    // over its limits) is a usage error here, before any weight is allocated or file written.
    Maker dry{at::detail::createCPUGenerator(s.seed), s.init_std, {}, true};
    Result<ModelConfig> check = parse_hf_config_text(make_tensors(s, dry).dump(), "random model config");
    if (!check) fail_usage("random model: " + check.error().message);
    Maker mk{at::detail::createCPUGenerator(s.seed), s.init_std, {}};
    nlohmann::json cfg = make_tensors(s, mk);
    fs::path tmp = out.string() + ".tmp";
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) fail_input(tmp.string() + ": cannot create the folder: " + ec.message());
    {
      std::ofstream f(tmp / "config.json");
      f << cfg.dump(2) << "\n";
      if (!f) fail_input((tmp / "config.json").string() + ": write failed");
    }
    Status st = write_safetensors((tmp / "model.safetensors").string(), mk.tensors,
                                  {{"format", "pt"}, {"generator", "mechscope zoo random"}});
    if (!st) throw InputError(st.error().message, st.error().code);
    fs::remove_all(out, ec);
    fs::rename(tmp, out, ec);
    if (ec) fail_input(out_dir + ": cannot move the finished model into place: " + ec.message());
  });
}

}  // namespace ms
