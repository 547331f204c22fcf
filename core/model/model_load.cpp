// Model loading: Hugging Face folders (gpt2, gpt_neox, llama, mistral, qwen2) and GGUF files
// (llama), mapped into the canonical ModelWeights layout with every shape checked.
#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/io/gguf.h"
#include "core/model/model.h"
#include "core/io/safetensors.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

// Reads canonical tensor names from a source, trying the prefixes Hugging Face writes in
// different versions ("transformer.", "model.", "gpt_neox.").
class Getter {
 public:
  Getter(const TensorSource& src, std::vector<std::string> prefixes, c10::ScalarType dtype,
         c10::Device device)
      : m_src(src), m_prefixes(std::move(prefixes)), m_dtype(dtype), m_device(device) {}

  const TensorView* find(const std::string& name) const {
    if (const TensorView* v = m_src.find(name)) return v;
    for (const auto& p : m_prefixes)
      if (const TensorView* v = m_src.find(p + name)) return v;
    return nullptr;
  }

  // The tensor, checked against the expected shape (as stored in the file), converted to the
  // compute dtype, on CPU (the caller moves it once laid out).
  at::Tensor get(const std::string& name, std::vector<int64_t> shape) const {
    const TensorView* v = find(name);
    if (!v) {
      std::string tried = "'" + name + "'";
      for (const auto& p : m_prefixes) tried += ", '" + p + name + "'";
      fail_input(m_src.describe() + ": tensor '" + name + "' is missing (looked for " + tried + ")");
    }
    if (v->shape != shape)
      fail_input(file_of(*v) + ": tensor '" + v->name + "' has shape " + shape_str(v->shape) +
                 ", config expects " + shape_str(shape));
    return to_tensor(*v, m_dtype);
  }
  at::Tensor get_optional(const std::string& name, std::vector<int64_t> shape) const {
    return find(name) ? get(name, std::move(shape)) : at::Tensor();
  }
  const TensorSource& source() const { return m_src; }

 private:
  static std::string file_of(const TensorView& v) {
    return v.file ? fs::path(v.file->path()).filename().string() : std::string("weights");
  }
  const TensorSource& m_src;
  std::vector<std::string> m_prefixes;
  c10::ScalarType m_dtype;
  c10::Device m_device;
};

std::string L(int64_t layer) { return std::to_string(layer); }

ModelWeights load_gpt2(const ModelConfig& c, const Getter& g) {
  ModelWeights w;
  const int64_t d = c.d_model;
  w.w_e = g.get("wte.weight", {c.d_vocab, d});
  w.w_pos = g.get("wpe.weight", {c.n_ctx, d});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "h." + L(l) + ".";
    LayerWeights lw;
    lw.ln1_w = g.get(p + "ln_1.weight", {d});
    lw.ln1_b = g.get(p + "ln_1.bias", {d});
    // Conv1D stores [in, out]; the canonical layout is [out, in], kept as a transposed view of
    // the mapped file (no copy; BLAS reads either orientation at the same speed).
    lw.w_qkv = g.get(p + "attn.c_attn.weight", {d, 3 * d}).t();
    lw.b_qkv = g.get(p + "attn.c_attn.bias", {3 * d});
    lw.w_o = g.get(p + "attn.c_proj.weight", {d, d}).t();
    lw.b_o = g.get(p + "attn.c_proj.bias", {d});
    lw.ln2_w = g.get(p + "ln_2.weight", {d});
    lw.ln2_b = g.get(p + "ln_2.bias", {d});
    lw.w_in = g.get(p + "mlp.c_fc.weight", {d, c.d_mlp}).t();
    lw.b_in = g.get(p + "mlp.c_fc.bias", {c.d_mlp});
    lw.w_out = g.get(p + "mlp.c_proj.weight", {c.d_mlp, d}).t();
    lw.b_out = g.get(p + "mlp.c_proj.bias", {d});
    w.layers.push_back(std::move(lw));
  }
  w.ln_f_w = g.get("ln_f.weight", {d});
  w.ln_f_b = g.get("ln_f.bias", {d});
  w.w_u = c.tie_embeddings ? w.w_e : g.get("lm_head.weight", {c.d_vocab, d});
  return w;
}

ModelWeights load_neox(const ModelConfig& c, const Getter& g) {
  ModelWeights w;
  const int64_t d = c.d_model, h = c.n_heads, dh = c.d_head;
  w.w_e = g.get("embed_in.weight", {c.d_vocab, d});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + L(l) + ".";
    LayerWeights lw;
    lw.ln1_w = g.get(p + "input_layernorm.weight", {d});
    lw.ln1_b = g.get(p + "input_layernorm.bias", {d});
    // Fused qkv is laid out per head as [head, (q|k|v), d_head]; regroup as [q heads | k | v].
    at::Tensor qkv = g.get(p + "attention.query_key_value.weight", {3 * h * dh, d});
    lw.w_qkv = qkv.view({h, 3, dh, d}).permute({1, 0, 2, 3}).reshape({3 * h * dh, d}).contiguous();
    if (c.qkv_bias) {
      at::Tensor b = g.get(p + "attention.query_key_value.bias", {3 * h * dh});
      lw.b_qkv = b.view({h, 3, dh}).permute({1, 0, 2}).reshape({3 * h * dh}).contiguous();
    }
    lw.w_o = g.get(p + "attention.dense.weight", {d, h * dh});
    if (c.o_bias) lw.b_o = g.get(p + "attention.dense.bias", {d});
    lw.ln2_w = g.get(p + "post_attention_layernorm.weight", {d});
    lw.ln2_b = g.get(p + "post_attention_layernorm.bias", {d});
    lw.w_in = g.get(p + "mlp.dense_h_to_4h.weight", {c.d_mlp, d});
    lw.b_in = g.get(p + "mlp.dense_h_to_4h.bias", {c.d_mlp});
    lw.w_out = g.get(p + "mlp.dense_4h_to_h.weight", {d, c.d_mlp});
    lw.b_out = g.get(p + "mlp.dense_4h_to_h.bias", {d});
    w.layers.push_back(std::move(lw));
  }
  w.ln_f_w = g.get("final_layer_norm.weight", {d});
  w.ln_f_b = g.get("final_layer_norm.bias", {d});
  w.w_u = c.tie_embeddings ? w.w_e : g.get("embed_out.weight", {c.d_vocab, d});
  return w;
}

ModelWeights load_llama(const ModelConfig& c, const Getter& g) {
  ModelWeights w;
  const int64_t d = c.d_model, qd = c.q_dim(), kvd = c.kv_dim();
  w.w_e = g.get("embed_tokens.weight", {c.d_vocab, d});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + L(l) + ".";
    LayerWeights lw;
    lw.ln1_w = g.get(p + "input_layernorm.weight", {d});
    lw.w_qkv = at::cat({g.get(p + "self_attn.q_proj.weight", {qd, d}),
                        g.get(p + "self_attn.k_proj.weight", {kvd, d}),
                        g.get(p + "self_attn.v_proj.weight", {kvd, d})});
    if (c.qkv_bias)
      lw.b_qkv = at::cat({g.get(p + "self_attn.q_proj.bias", {qd}),
                          g.get(p + "self_attn.k_proj.bias", {kvd}),
                          g.get(p + "self_attn.v_proj.bias", {kvd})});
    lw.w_o = g.get(p + "self_attn.o_proj.weight", {d, qd});
    if (c.o_bias) lw.b_o = g.get(p + "self_attn.o_proj.bias", {d});
    lw.ln2_w = g.get(p + "post_attention_layernorm.weight", {d});
    lw.w_in = at::cat({g.get(p + "mlp.gate_proj.weight", {c.d_mlp, d}),
                       g.get(p + "mlp.up_proj.weight", {c.d_mlp, d})});
    if (c.mlp_bias)
      lw.b_in = at::cat({g.get(p + "mlp.gate_proj.bias", {c.d_mlp}),
                         g.get(p + "mlp.up_proj.bias", {c.d_mlp})});
    lw.w_out = g.get(p + "mlp.down_proj.weight", {d, c.d_mlp});
    if (c.mlp_bias) lw.b_out = g.get(p + "mlp.down_proj.bias", {d});
    w.layers.push_back(std::move(lw));
  }
  w.ln_f_w = g.get("norm.weight", {d});
  w.w_u = c.tie_embeddings ? w.w_e : g.get("lm_head.weight", {c.d_vocab, d});
  return w;
}

// llama.cpp stores q/k rows in Meta's layout (RoPE on adjacent pairs (2i, 2i+1)); regroup each
// head's rows into Hugging Face's rotate_half layout (i, i + d_head/2).
at::Tensor unpermute_meta(const at::Tensor& w, int64_t heads, int64_t d_head) {
  int64_t in = w.size(1);
  return w.view({heads, d_head / 2, 2, in}).transpose(1, 2).reshape({heads * d_head, in}).contiguous();
}

ModelWeights load_gguf_llama(const ModelConfig& c, const Getter& g) {
  ModelWeights w;
  const int64_t d = c.d_model, qd = c.q_dim(), kvd = c.kv_dim();
  w.w_e = g.get("token_embd.weight", {c.d_vocab, d});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + L(l) + ".";
    LayerWeights lw;
    lw.ln1_w = g.get(p + "attn_norm.weight", {d});
    lw.w_qkv = at::cat({unpermute_meta(g.get(p + "attn_q.weight", {qd, d}), c.n_heads, c.d_head),
                        unpermute_meta(g.get(p + "attn_k.weight", {kvd, d}), c.n_kv_heads, c.d_head),
                        g.get(p + "attn_v.weight", {kvd, d})});
    lw.w_o = g.get(p + "attn_output.weight", {d, qd});
    lw.ln2_w = g.get(p + "ffn_norm.weight", {d});
    lw.w_in = at::cat({g.get(p + "ffn_gate.weight", {c.d_mlp, d}), g.get(p + "ffn_up.weight", {c.d_mlp, d})});
    lw.w_out = g.get(p + "ffn_down.weight", {d, c.d_mlp});
    w.layers.push_back(std::move(lw));
  }
  w.ln_f_w = g.get("output_norm.weight", {d});
  w.w_u = c.tie_embeddings ? w.w_e : g.get("output.weight", {c.d_vocab, d});
  return w;
}

bool is_pickle_name(const std::string& name) {
  for (const char* ext : {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
    if (name.size() > std::strlen(ext) && name.compare(name.size() - std::strlen(ext), std::string::npos, ext) == 0)
      return true;
  return false;
}

[[noreturn]] void refuse_pickle(const std::string& path) {
  fail_input(path + ": PyTorch pickle checkpoints are refused: loading a pickle can execute "
             "arbitrary code. Convert it to safetensors first, e.g. in Python: "
             "`AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, "
             "safe_serialization=True)`, or with llama.cpp's convert_hf_to_gguf.py to GGUF.");
}

void move_weights(ModelWeights& w, c10::Device device) {
  if (device.is_cpu()) return;
  bool tied = w.w_u.defined() && w.w_u.is_same(w.w_e);
  auto mv = [&](at::Tensor& t) { if (t.defined()) t = t.to(device); };
  mv(w.w_e); mv(w.w_pos); mv(w.ln_f_w); mv(w.ln_f_b); mv(w.b_u);
  if (tied) w.w_u = w.w_e; else mv(w.w_u);
  for (auto& l : w.layers)
    for (at::Tensor* t : {&l.ln1_w, &l.ln1_b, &l.ln2_w, &l.ln2_b, &l.w_qkv, &l.b_qkv, &l.w_o,
                          &l.b_o, &l.w_in, &l.b_in, &l.w_out, &l.b_out})
      mv(*t);
}

}  // namespace

struct ModelLoader {
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& opts) {
    Result<c10::Device> device = parse_device(opts.device);
    if (!device) throw InputError(device.error().message, device.error().code);
    Result<c10::ScalarType> dtype = parse_dtype(opts.dtype);
    if (!dtype) throw InputError(dtype.error().message, dtype.error().code);
    if (device->is_cuda() && !at::hasCUDA())
      fail_usage("--device " + opts.device + ": this build of LibTorch has no CUDA support or no GPU is visible");
    if (*dtype == at::kHalf && device->is_cpu()) {
      try {
        at::mm(at::ones({2, 2}, at::kHalf), at::ones({2, 2}, at::kHalf));
      } catch (const std::exception&) {
        fail_usage("--dtype f16 is not supported on CPU by this LibTorch (no half-precision "
                   "matmul); use --dtype bf16 or f32, or --device cuda");
      }
    }

    std::error_code ec;
    if (!fs::exists(path, ec)) fail_input(path + ": no such file or folder");
    std::unique_ptr<Model> m(new Model());
    m->m_source = path;
    if (fs::is_regular_file(path, ec)) {
      std::string name = fs::path(path).filename().string();
      if (is_pickle_name(name)) refuse_pickle(path);
      if (fs::path(path).extension() != ".gguf")
        fail_input(path + ": not a model: give a Hugging Face model folder (config.json + "
                   "safetensors) or a .gguf file");
      Result<std::unique_ptr<GgufFile>> g = GgufFile::open(path);
      if (!g) throw InputError(g.error().message, g.error().code);
      Result<ModelConfig> cfg = config_from_gguf(**g);
      if (!cfg) throw InputError(cfg.error().message, cfg.error().code);
      m->m_cfg = std::move(*cfg);
      Getter getter(**g, {}, *dtype, *device);
      m->m_w = load_gguf_llama(m->m_cfg, getter);
      m->m_weights_desc = (*g)->describe();
      if ((*g)->get("tokenizer.ggml.tokens")) {
        Result<std::unique_ptr<Tokenizer>> tok = tokenizer_from_gguf_vocab((*g)->vocab());
        if (!tok) throw InputError(path + ": embedded tokenizer: " + tok.error().message);
        m->m_tokenizer = std::move(*tok);
      }
    } else {
      fs::path dir(path);
      if (!fs::exists(dir / "config.json"))
        fail_input(path + ": no config.json in this folder (a Hugging Face model folder holds "
                   "config.json and model.safetensors)");
      Result<ModelConfig> cfg = parse_hf_config((dir / "config.json").string());
      if (!cfg) throw InputError(cfg.error().message, cfg.error().code);
      m->m_cfg = std::move(*cfg);
      bool has_st = fs::exists(dir / "model.safetensors") ||
                    fs::exists(dir / "model.safetensors.index.json");
      if (!has_st) {
        for (const char* p : {"pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt",
                              "model.pth", "model.ckpt"})
          if (fs::exists(dir / p)) refuse_pickle((dir / p).string());
      }
      Result<std::unique_ptr<SafetensorsCheckpoint>> ck = SafetensorsCheckpoint::open_dir(path);
      if (!ck) throw InputError(ck.error().message, ck.error().code);
      Getter getter(**ck, {"transformer.", "model.", "gpt_neox."}, *dtype, *device);
      const std::string& t = m->m_cfg.model_type;
      if (t == "gpt2") m->m_w = load_gpt2(m->m_cfg, getter);
      else if (t == "gpt_neox") m->m_w = load_neox(m->m_cfg, getter);
      else m->m_w = load_llama(m->m_cfg, getter);
      m->m_weights_desc = (*ck)->describe();
      Result<std::unique_ptr<Tokenizer>> tok = load_tokenizer(path);
      if (!tok) throw InputError(tok.error().message, tok.error().code);
      m->m_tokenizer = std::move(*tok);
    }
    move_weights(m->m_w, *device);
    m->build_hook_points();
    m->prepare_rope();
    return m;
  }
};

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const LoadOptions& opts) {
  return guard([&] { return ModelLoader::load(path, opts); });
}

Result<std::unique_ptr<Model>> Model::from_weights(ModelConfig cfg, ModelWeights weights,
                                                   std::unique_ptr<Tokenizer> tokenizer) {
  return guard([&]() -> std::unique_ptr<Model> {
    Status st = validate_config(cfg, "model config");
    if (!st) throw InputError(st.error().message);
    if (static_cast<int64_t>(weights.layers.size()) != cfg.n_layers)
      fail_input("weights have " + std::to_string(weights.layers.size()) + " layers, config " +
                 std::to_string(cfg.n_layers));
    std::unique_ptr<Model> m(new Model());
    m->m_cfg = std::move(cfg);
    m->m_w = std::move(weights);
    m->m_tokenizer = std::move(tokenizer);
    m->m_source = "(in memory)";
    m->m_weights_desc = "in memory";
    m->build_hook_points();
    m->prepare_rope();
    return m;
  });
}

Model::~Model() = default;

std::vector<std::pair<std::string, at::Tensor>> ModelWeights::named() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  auto add = [&](const std::string& n, const at::Tensor& t) {
    if (t.defined()) out.emplace_back(n, t);
  };
  add("w_e", w_e);
  add("w_pos", w_pos);
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerWeights& lw = layers[l];
    const std::string p = "blocks." + std::to_string(l) + ".";
    add(p + "ln1_w", lw.ln1_w); add(p + "ln1_b", lw.ln1_b);
    add(p + "w_qkv", lw.w_qkv); add(p + "b_qkv", lw.b_qkv);
    add(p + "w_o", lw.w_o); add(p + "b_o", lw.b_o);
    add(p + "ln2_w", lw.ln2_w); add(p + "ln2_b", lw.ln2_b);
    add(p + "w_in", lw.w_in); add(p + "b_in", lw.b_in);
    add(p + "w_out", lw.w_out); add(p + "b_out", lw.b_out);
  }
  add("ln_f_w", ln_f_w);
  add("ln_f_b", ln_f_b);
  if (w_u.defined() && !w_u.is_same(w_e)) add("w_u", w_u);
  add("b_u", b_u);
  return out;
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& kv : m_w.named()) n += kv.second.numel();
  return n;
}

c10::ScalarType Model::dtype() const { return m_w.w_e.scalar_type(); }
c10::Device Model::device() const { return m_w.w_e.device(); }

Result<c10::Device> parse_device(const std::string& s) {
  if (s == "cpu") return c10::Device(c10::kCPU);
  if (s == "cuda") return c10::Device(c10::kCUDA, 0);
  if (s.rfind("cuda:", 0) == 0) {
    try {
      return c10::Device(s);
    } catch (const std::exception&) {
    }
  }
  return Error{ErrorCode::kUsage, "--device '" + s + "': expected cpu, cuda or cuda:N"};
}

Result<c10::ScalarType> parse_dtype(const std::string& s) {
  if (s == "f32" || s == "float32") return at::kFloat;
  if (s == "f16" || s == "float16") return at::kHalf;
  if (s == "bf16" || s == "bfloat16") return at::kBFloat16;
  return Error{ErrorCode::kUsage, "--dtype '" + s + "': expected f32, f16 or bf16"};
}

}  // namespace ms
