// Random-weight models in the Hugging Face layout, named exactly as transformers saves them: the
// family's table (core/model/arch/) gives the config fields and every tensor.
#include "core/zoo/zoo_random.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/base/malloc_reuse.h"
#include "core/io/safetensors.h"
#include "core/model/arch/arch_spec.h"
#include "core/model/model_config.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

struct Maker {
  at::Generator gen;
  double std;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  bool dry = false;  // only the config: nothing allocated (checked before the weights are made)
  c10::ScalarType dtype = at::kFloat;  // each tensor is stored in it as soon as it is drawn

  void normal(const std::string& name, std::vector<int64_t> shape) {
    if (!dry) tensors.emplace_back(name, at::normal(0.0, std, shape, gen, at::TensorOptions().dtype(at::kFloat)).to(dtype));
  }
  void fill(const std::string& name, std::vector<int64_t> shape, double v) {
    if (!dry) tensors.emplace_back(name, at::full(shape, v, at::TensorOptions().dtype(at::kFloat)).to(dtype));
  }
};

// A rotary fraction that the loader's int(d_head * fraction) turns into a valid rotary dimension
// for any head size: the family's own default when d_head is a multiple of 8, else about a quarter
// of the head made even and at least 2 (+ 0.5: exact under the truncation whatever the rounding).
double valid_rotary_fraction(double fraction, int64_t d_head) {
  if (d_head % 8 == 0) return fraction;
  const int64_t rotary = std::max<int64_t>(2, d_head / 4 / 2 * 2);
  return rotary >= d_head ? 1.0 : (static_cast<double>(rotary) + 0.5) / static_cast<double>(d_head);
}

// The family's config for these sizes (parsed back as the loader will), then every tensor of
// its table in file order: matrices ~ N(0, std), norm weights 1, biases 0.
nlohmann::json make_tensors(const RandomModelSpec& s, Maker& mk) {
  const ArchSpec* a = find_arch(s.arch);
  if (!a) fail_usage("unknown architecture '" + s.arch + "' (" + arch_names() + ")");
  nlohmann::json cfg = random_hf_config(
      *a, {s.n_layers, s.d_model, s.n_heads, s.n_kv_heads, s.d_mlp, s.d_vocab, s.n_ctx, s.d_head});
  if (s.dtype == "bf16") cfg["torch_dtype"] = "bfloat16";
  for (const ConfigField& f : a->config)  // partial rotary: a fraction valid for this head size
    if (f.field == Field::kRotaryFraction && cfg.contains(f.keys[0]) && cfg[f.keys[0]].is_number() &&
        s.n_heads > 0)
      cfg[f.keys[0]] = valid_rotary_fraction(cfg[f.keys[0]].get<double>(), s.d_head > 0 ? s.d_head : s.d_model / s.n_heads);
  Result<ModelConfig> c = parse_hf_config_text(cfg.dump(), "random " + s.arch + " model");
  if (!c) fail_usage(c.error().message);
  for_each_tensor(*a, c->n_layers, [&](const TensorSpec& t, int64_t layer) {
    if (!tensor_present(t.when, *c)) return;
    const std::string name = tensor_name(t.hf.name, layer);
    std::vector<int64_t> shape = stored_shape(t.hf.conv, canonical_shape(t.slot, t.part, *c));
    switch (slot_kind(t.slot)) {
      case SlotKind::kMatrix: mk.normal(name, shape); break;
      case SlotKind::kNormWeight: mk.fill(name, shape, t.hf.conv == Conv::kPlusOne ? 0.0 : 1.0); break;  // a scale of 1
      case SlotKind::kBias: mk.fill(name, shape, 0.0); break;
    }
  });
  return cfg;
}

}  // namespace

ModelWeights random_weights(const ModelConfig& c, uint64_t seed, double std) {
  HugePagesScope huge;  // as loaded weights (core/base/malloc_reuse.h)
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
    if (c.pre_norm) lw.ln1_w = ones(d);
    if (ln && c.pre_norm) lw.ln1_b = rnd({d});
    if (c.qk_norm != QkNorm::kNone) {
      const bool all = c.qk_norm == QkNorm::kAllHeads;
      lw.q_norm_w = ones(all ? c.q_dim() : c.d_head);
      lw.k_norm_w = ones(all ? c.kv_dim() : c.d_head);
    }
    if (c.post_norm) lw.ln1_post_w = ones(d);
    lw.w_qkv = rnd({qkv, d});
    if (c.qkv_bias) lw.b_qkv = rnd({qkv});
    lw.w_o = rnd({d, c.q_dim()});
    if (c.o_bias) lw.b_o = rnd({d});
    if (!c.attn_only()) {
      if (c.pre_norm) lw.ln2_w = ones(d);
      if (ln && c.pre_norm) lw.ln2_b = rnd({d});
      if (c.post_norm) lw.ln2_post_w = ones(d);
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
    if (s.n_layers <= 0 || s.d_model <= 0 || s.n_heads <= 0 || (s.d_head <= 0 && s.d_model % s.n_heads))
      fail_usage("random model: need positive sizes and d_model divisible by n_heads (or --d-head)");
    if (s.dtype != "f32" && s.dtype != "bf16") fail_usage("random model: --dtype must be f32 or bf16, got " + s.dtype);
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
    mk.dtype = s.dtype == "bf16" ? at::kBFloat16 : at::kFloat;
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
