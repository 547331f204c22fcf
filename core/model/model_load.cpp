// Model loading: Hugging Face folders and GGUF files, mapped into the canonical ModelWeights
// layout by the family's table (core/model/arch/) with every shape checked.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "core/base/malloc_reuse.h"
#include "core/io/gguf.h"
#include "core/model/arch/arch_spec.h"
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

// Reads stored tensors by the table's names from a source; a name under the family's prefix
// ("transformer.") is also looked for without it, as older checkpoints store it.
class Getter {
 public:
  Getter(const TensorSource& src, std::string prefix, c10::ScalarType dtype)
      : m_src(src), m_prefix(std::move(prefix)), m_dtype(dtype) {}

  std::vector<std::string> candidates(const std::string& name) const {
    std::vector<std::string> out{name};
    if (!m_prefix.empty() && name.rfind(m_prefix, 0) == 0) out.push_back(name.substr(m_prefix.size()));
    return out;
  }

  const TensorView* find(const std::string& name) const {
    for (const auto& n : candidates(name))
      if (const TensorView* v = m_src.find(n)) return v;
    return nullptr;
  }

  // The tensor, checked against the expected shape (as stored in the file), converted to the
  // compute dtype, on CPU (the caller moves it once laid out).
  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorView* v = find(name);
    if (!v) {
      std::string tried;
      for (const auto& n : candidates(name)) tried += (tried.empty() ? "'" : ", '") + n + "'";
      fail_input(m_src.describe() + ": tensor '" + name + "' is missing (looked for " + tried + ")");
    }
    if (v->shape != shape)
      fail_input(file_of(*v) + ": tensor '" + v->name + "' has shape " + shape_str(v->shape) +
                 ", config expects " + shape_str(shape));
    return to_tensor(*v, m_dtype);
  }

  const TensorSource& source() const { return m_src; }

 private:
  static std::string file_of(const TensorView& v) {
    return v.file ? fs::path(v.file->path()).filename().string() : std::string("weights");
  }
  const TensorSource& m_src;
  std::string m_prefix;
  c10::ScalarType m_dtype;
};

// Every tensor the table lists for this config, converted to its canonical part; parts of one
// slot (q, k, v; gate, up) are concatenated in canonical order.
ModelWeights load_by_table(const ArchSpec& a, const ModelConfig& c, const Getter& g, bool gguf) {
  ModelWeights w;
  w.layers.resize(static_cast<size_t>(c.n_layers));
  std::map<std::pair<int64_t, Slot>, std::vector<std::pair<Part, at::Tensor>>> parts;
  for_each_tensor(a, c.n_layers, [&](const TensorSpec& t, int64_t layer) {
    if (!tensor_present(t.when, c)) return;
    const StoredName& sn = gguf ? t.gguf : t.hf;
    if (!sn.name)
      fail_input(g.source().describe() + ": this " + a.model_type + " config needs '" + t.hf.name +
                 "', which has no GGUF name (core/model/arch/)");
    at::Tensor stored = g.get(tensor_name(sn.name, layer), stored_shape(sn.conv, canonical_shape(t.slot, t.part, c)));
    parts[{layer, t.slot}].emplace_back(t.part, to_canonical(stored, sn.conv, t.part, c));
  });
  for (auto& [key, list] : parts) {
    std::stable_sort(list.begin(), list.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    at::Tensor& dst = slot_ref(w, key.second, key.first);
    if (list.size() == 1) {
      dst = list[0].second;  // no copy: may share the file's mapping
    } else {
      std::vector<at::Tensor> ts;
      for (auto& pt : list) ts.push_back(pt.second);
      dst = at::cat(ts);
    }
    list.clear();  // the parts are freed slot by slot: the peak is the weights plus one slot
  }
  if (c.tie_embeddings) w.w_u = w.w_e;
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
                          &l.b_o, &l.w_in, &l.b_in, &l.w_out, &l.b_out, &l.q_norm_w, &l.k_norm_w,
                          &l.ln1_post_w, &l.ln2_post_w})
      mv(*t);
}

}  // namespace

struct ModelLoader {
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& opts) {
    HugePagesScope huge;  // the weights made here (converted, concatenated) on huge pages
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
      Getter getter(**g, "", *dtype);
      m->m_w = load_by_table(*find_arch_gguf((*g)->get_string("general.architecture")), m->m_cfg, getter, true);
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
      const ArchSpec& arch = *find_arch(m->m_cfg.model_type);
      Getter getter(**ck, arch.hf_prefix, *dtype);
      m->m_w = load_by_table(arch, m->m_cfg, getter, false);
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
    add(p + "q_norm_w", lw.q_norm_w); add(p + "k_norm_w", lw.k_norm_w);
    add(p + "ln1_post_w", lw.ln1_post_w); add(p + "ln2_post_w", lw.ln2_post_w);
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
