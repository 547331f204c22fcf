// SAELens folders and Gemma Scope params.npz -> Sae. Config defaults follow SAELens 6.x's
// handle_pre_6_0_config for older files (hook_point -> hook_name, normalize_activations as a bool,
// topk as activation_fn_kwargs.k); expected_average_only_in and a finetuning scaling_factor are
// folded into the weights here, as SAELens' fold_activation_norm_scaling_factor does.
#include "core/features/sae_load.h"
#include "core/features/sae_load_detail.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/base/json_input.h"
#include "core/io/npz.h"
#include "core/io/safetensors.h"
#include "core/model/model.h"
#include "hooks/activation_cache.h"
#include "hooks/hook_names.h"

namespace fs = std::filesystem;

namespace ms {
namespace sae_load_detail {

// Tensors by name from a safetensors file or an npz, as float32.
TensorMap read_safetensors(const std::string& path) {
  auto f = SafetensorsFile::open(path);
  if (!f) throw InputError(f.error().message, f.error().code);
  TensorMap out;
  for (const std::string& name : (*f)->names()) {
    const TensorView* v = (*f)->find(name);
    if (!dtype_is_float(v->dtype))
      fail_input(path + ": tensor '" + name + "' has dtype " + dtype_name(v->dtype) + "; SAE weights are floats");
    out[name] = to_tensor(*v, at::kFloat).clone();  // owns its memory: the mapping closes with f
  }
  return out;
}

void expect_shape(const at::Tensor& t, const std::string& name, std::vector<int64_t> shape,
                  const std::string& file, const std::string& why) {
  if (t.sizes().vec() != shape)
    fail_input(file + ": tensor '" + name + "' has shape " + shape_str(t.sizes().vec()) + ", " + why + " " +
               shape_str(shape));
}

// Moves the weights out of the map into sae.w, checking every shape; refuses leftovers.
void take_weights(Sae& sae, TensorMap tensors, const std::string& file) {
  const SaeConfig& c = sae.cfg;
  const std::string why = "d_in " + std::to_string(c.d_in) + ", d_sae " + std::to_string(c.d_sae) +
                          (sae_is_transcoder(c.arch) ? ", d_out " + std::to_string(c.d_out) : "") + " need";
  auto take = [&](const std::string& name, std::vector<int64_t> shape, bool required) -> at::Tensor {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (required)
        fail_input(file + ": tensor '" + name + "' is missing (a " + sae_arch_name(c.arch) + " SAE needs it)");
      return {};
    }
    at::Tensor t = it->second.to(at::kFloat).contiguous();
    tensors.erase(it);
    expect_shape(t, name, shape, file, why);
    return t;
  };
  const bool gated = c.arch == SaeArch::kGated;
  const bool jump = c.arch == SaeArch::kJumpRelu || c.arch == SaeArch::kJumpReluTranscoder;
  sae.w.W_enc = take("W_enc", {c.d_in, c.d_sae}, true);
  sae.w.W_dec = take("W_dec", {c.d_sae, c.d_out}, true);
  sae.w.b_dec = take("b_dec", {c.d_out}, true);
  sae.w.b_enc = take("b_enc", {c.d_sae}, !gated);
  if (gated) {
    sae.w.b_gate = take("b_gate", {c.d_sae}, true);
    sae.w.r_mag = take("r_mag", {c.d_sae}, true);
    sae.w.b_mag = take("b_mag", {c.d_sae}, true);
  }
  if (jump) {
    at::Tensor log_t = take("log_threshold", {c.d_sae}, false);  // a training checkpoint's form
    sae.w.threshold = log_t.defined() ? log_t.exp() : take("threshold", {c.d_sae}, true);
  }
  if (c.arch == SaeArch::kSkipTranscoder) sae.w.W_skip = take("W_skip", {c.d_out, c.d_in}, true);
  // SAELens' finetuning scaling factor multiplies the activations before W_dec: folded into its rows.
  for (const char* name : {"scaling_factor", "finetuning_scaling_factor"}) {
    at::Tensor s = take(name, {c.d_sae}, false);
    if (s.defined()) sae.w.W_dec = sae.w.W_dec * s.unsqueeze(1);
  }
  if (!tensors.empty()) {
    std::string names;
    for (const auto& [n, t] : tensors) names += (names.empty() ? "'" : ", '") + n + "'";
    fail_input(file + ": unexpected tensor(s) " + names + " for a " + sae_arch_name(c.arch) + " SAE");
  }
}

}  // namespace sae_load_detail

namespace {

using namespace sae_load_detail;

constexpr int64_t kMaxDim = int64_t{1} << 26;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A field from the top level or from "meta" / "metadata" (SAELens 6 nests the hook there).
const nlohmann::json* field(const nlohmann::json& j, const std::string& key) {
  for (const char* nest : {"meta", "metadata"}) {
    auto m = j.find(nest);
    if (m != j.end() && m->is_object()) {
      auto f = m->find(key);
      if (f != m->end() && !f->is_null()) return &*f;
    }
  }
  auto f = j.find(key);
  return f != j.end() && !f->is_null() ? &*f : nullptr;
}

std::string str_field(const nlohmann::json& j, const std::string& key, const std::string& where) {
  const nlohmann::json* v = field(j, key);
  if (!v) return "";
  if (!v->is_string()) fail_input(where + ": field '" + key + "' must be a string, got " + json_brief(*v));
  return v->get<std::string>();
}

bool bool_field(const nlohmann::json& j, const std::string& key, bool dflt, const std::string& where) {
  const nlohmann::json* v = field(j, key);
  if (!v) return dflt;
  if (!v->is_boolean()) fail_input(where + ": field '" + key + "' must be true or false, got " + json_brief(*v));
  return v->get<bool>();
}

SaeArch parse_arch(const std::string& s, const std::string& where) {
  for (SaeArch a : {SaeArch::kStandard, SaeArch::kGated, SaeArch::kJumpRelu, SaeArch::kTopK, SaeArch::kTranscoder,
                    SaeArch::kSkipTranscoder, SaeArch::kJumpReluTranscoder}) {
    if (s == sae_arch_name(a)) return a;
  }
  fail_input(where + ": unknown SAE architecture '" + s + "' (known: standard, gated, jumprelu, topk, "
             "transcoder, skip_transcoder, jumprelu_transcoder)");
}

void fold_norm_scaling(Sae& sae, double s) {
  sae.w.W_enc = sae.w.W_enc * s;
  sae.w.W_dec = sae.w.W_dec / s;
  sae.w.b_dec = sae.w.b_dec / s;
  sae.cfg.folded_norm_scaling_factor = s;
}

std::shared_ptr<Sae> load_saelens(const std::string& dir, const SaeLoadOptions& opts) {
  const std::string cfg_path = (fs::path(dir) / "cfg.json").string();
  const nlohmann::json j = parse_json_input(read_text(cfg_path), cfg_path);
  if (!j.is_object()) fail_input(cfg_path + ": expected a JSON object");
  auto sae = std::make_shared<Sae>();
  SaeConfig& c = sae->cfg;
  c.format = "saelens";
  c.source = dir;
  std::string arch = str_field(j, "architecture", cfg_path);
  const std::string act_fn = str_field(j, "activation_fn", cfg_path).empty()
                                 ? str_field(j, "activation_fn_str", cfg_path) : str_field(j, "activation_fn", cfg_path);
  if (arch.empty()) arch = act_fn == "topk" ? "topk" : "standard";  // pre-6.0 files
  c.arch = parse_arch(arch, cfg_path);
  if (!act_fn.empty() && act_fn != "relu" && act_fn != "topk")
    fail_input(cfg_path + ": activation_fn '" + act_fn + "' is not supported (relu or topk)");
  const nlohmann::json* d_in = field(j, "d_in");
  const nlohmann::json* d_sae = field(j, "d_sae");
  if (!d_in || !d_sae) fail_input(cfg_path + ": d_in and d_sae are required");
  c.d_in = json_int(*d_in, 1, kMaxDim, cfg_path + ": d_in");
  c.d_sae = json_int(*d_sae, 1, kMaxDim, cfg_path + ": d_sae");
  c.d_out = c.d_in;
  if (sae_is_transcoder(c.arch)) {
    const nlohmann::json* d_out = field(j, "d_out");
    if (!d_out) fail_input(cfg_path + ": a transcoder needs d_out");
    c.d_out = json_int(*d_out, 1, kMaxDim, cfg_path + ": d_out");
    c.hook_name_out = str_field(j, "hook_name_out", cfg_path);
  }
  if (c.arch == SaeArch::kTopK) {
    const nlohmann::json* k = field(j, "k");
    if (!k) {
      auto kw = j.find("activation_fn_kwargs");
      if (kw != j.end() && kw->is_object() && kw->contains("k")) k = &(*kw)["k"];
    }
    if (!k) fail_input(cfg_path + ": a topk SAE needs k (or activation_fn_kwargs.k)");
    c.k = json_int(*k, 1, c.d_sae, cfg_path + ": k");
  }
  c.apply_b_dec_to_input = sae_is_transcoder(c.arch) ? false : bool_field(j, "apply_b_dec_to_input", true, cfg_path);
  c.hook_name = str_field(j, "hook_name", cfg_path);
  if (c.hook_name.empty()) c.hook_name = str_field(j, "hook_point", cfg_path);
  if (!opts.hook_name.empty()) c.hook_name = opts.hook_name;
  const nlohmann::json* head = field(j, "hook_head_index");
  if (!head) head = field(j, "hook_point_head_index");
  if (head) c.hook_head_index = json_int(*head, 0, 1 << 16, cfg_path + ": hook_head_index");
  c.prepend_bos = bool_field(j, "prepend_bos", true, cfg_path);
  c.model_name = str_field(j, "model_name", cfg_path);
  const std::string reshape = str_field(j, "reshape_activations", cfg_path);
  if (reshape == "hook_z") {
    c.reshape_hook_z = true;
  } else if (reshape.empty()) {  // before the field existed, SAELens reshaped every *_z SAE
    const std::string& h = c.hook_name;
    c.reshape_hook_z = c.hook_head_index < 0 && h.size() >= 2 && h.compare(h.size() - 2, 2, "_z") == 0;
  } else if (reshape != "none") {
    fail_input(cfg_path + ": reshape_activations '" + reshape + "' is not known (none or hook_z)");
  }
  const nlohmann::json* norm = field(j, "normalize_activations");
  if (norm && norm->is_boolean()) {
    c.normalize_activations = norm->get<bool>() ? "expected_average_only_in" : "none";
  } else if (norm && norm->is_string()) {
    c.normalize_activations = norm->get<std::string>();
  } else if (norm) {
    fail_input(cfg_path + ": normalize_activations must be a string, got " + json_brief(*norm));
  }

  TensorMap tensors = read_safetensors((fs::path(dir) / "sae_weights.safetensors").string());
  take_weights(*sae, std::move(tensors), (fs::path(dir) / "sae_weights.safetensors").string());

  const std::string& n = c.normalize_activations;
  if (n == "constant_norm_rescale") {
    c.runtime_norm = SaeRuntimeNorm::kConstantNormRescale;
  } else if (n == "layer_norm") {
    c.runtime_norm = SaeRuntimeNorm::kLayerNorm;
  } else if (n == "expected_average_only_in") {
    double s = opts.norm_scaling_factor;
    const fs::path scaler = fs::path(dir) / "activation_scaler.json";
    if (s == 0 && fs::exists(scaler)) {
      const nlohmann::json sj = parse_json_input(read_text(scaler.string()), scaler.string());
      if (!sj.is_object() || !sj.contains("scaling_factor") || !sj["scaling_factor"].is_number())
        fail_input(scaler.string() + ": expected {\"scaling_factor\": <number>}");
      s = sj["scaling_factor"].get<double>();
    }
    if (s == 0)
      fail_input(cfg_path + ": normalize_activations is expected_average_only_in but no scaling factor is "
                 "known: put activation_scaler.json ({\"scaling_factor\": s}) in the folder or give "
                 "--norm-scaling-factor s (1 if it is already folded into the weights)");
    if (!(s > 0) || !std::isfinite(s)) fail_input(cfg_path + ": the norm scaling factor must be positive");
    fold_norm_scaling(*sae, s);
  } else if (n != "none") {
    fail_input(cfg_path + ": normalize_activations '" + n + "' is not known (none, constant_norm_rescale, "
               "expected_average_only_in, layer_norm)");
  }

  const fs::path sparsity = fs::path(dir) / "sparsity.safetensors";
  if (fs::exists(sparsity)) {
    TensorMap sp = read_safetensors(sparsity.string());
    auto it = sp.find("sparsity");
    if (it == sp.end()) fail_input(sparsity.string() + ": tensor 'sparsity' is missing");
    expect_shape(it->second, "sparsity", {c.d_sae}, sparsity.string(), "d_sae needs");
    sae->w.log_sparsity = it->second;
  }
  return sae;
}

}  // namespace

std::shared_ptr<Sae> sae_load_detail::load_npz(const std::string& file, const SaeLoadOptions& opts) {
  Result<TensorMap> r = read_npz(file);
  if (!r) throw InputError(r.error().message, r.error().code);
  TensorMap tensors;
  for (auto& [name, t] : r.value()) {  // Gemma Scope writes W_enc; some copies w_enc (SAELens maps them)
    std::string key = name.rfind("w_", 0) == 0 ? "W_" + name.substr(2) : name;
    if (!t.is_floating_point()) fail_input(file + ": array '" + name + "' is not floating point");
    tensors[key] = t;
  }
  auto sae = std::make_shared<Sae>();
  SaeConfig& c = sae->cfg;
  c.format = "gemma-scope-npz";
  c.source = file;
  c.arch = SaeArch::kJumpRelu;
  c.apply_b_dec_to_input = false;
  c.hook_name = opts.hook_name;
  auto enc = tensors.find("W_enc");
  if (enc == tensors.end()) fail_input(file + ": array 'W_enc' is missing");
  if (enc->second.dim() != 2) fail_input(file + ": array 'W_enc' has shape " + shape_str(enc->second.sizes().vec()) + ", expected [d_in, d_sae]");
  c.d_in = c.d_out = enc->second.size(0);
  c.d_sae = enc->second.size(1);
  if (c.d_in < 1 || c.d_sae < 1) fail_input(file + ": array 'W_enc' is empty");
  c.reshape_hook_z = c.hook_name.size() >= 6 && c.hook_name.compare(c.hook_name.size() - 6, 6, "hook_z") == 0;
  take_weights(*sae, std::move(tensors), file);
  return sae;
}


Result<std::shared_ptr<Sae>> load_sae(const std::string& path, const SaeLoadOptions& opts) {
  return guard([&]() -> std::shared_ptr<Sae> {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      if (fs::exists(fs::path(path) / "cfg.json")) return load_saelens(path, opts);
      if (fs::exists(fs::path(path) / "params.npz")) return sae_load_detail::load_npz((fs::path(path) / "params.npz").string(), opts);
      if (sae_load_detail::is_transcoder_set_folder(path)) return sae_load_detail::load_transcoder_set(path, opts.layer, opts);
      fail_input(path + ": no cfg.json (SAELens), params.npz (Gemma Scope) or layer_{i}.safetensors "
                 "(circuit-tracer transcoders) in the folder");
    }
    if (!fs::exists(path, ec)) fail_input(path + ": no such file or folder");
    if (int layer = sae_load_detail::transcoder_file_layer(path); layer >= 0) {
      if (opts.layer >= 0 && opts.layer != layer)
        fail_input(path + ": the file is layer " + std::to_string(layer) + " but layer " +
                   std::to_string(opts.layer) + " was asked for");
      return sae_load_detail::load_transcoder_set(fs::path(path).parent_path().string(), layer, opts);
    }
    if (path.size() > 4 && path.compare(path.size() - 4, 4, ".npz") == 0) return sae_load_detail::load_npz(path, opts);
    fail_input(path + ": not an SAE: give an SAELens folder (cfg.json + sae_weights.safetensors), a "
               "params.npz, or a transcoder folder's layer_{i}.safetensors; pickle files (.pt, .pth) are never read");
  });
}

namespace {

// The activation at a hook point for one token (batch 1), run up to that layer.
at::Tensor probe_activation(const Model& model, const std::string& hook) {
  c10::InferenceMode guard;
  HookRegistry reg;
  ActivationCache cache;
  reg.add_forward(hook, cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &reg;
  const int layer = hook_layer(hook);
  if (layer >= 0 && layer + 1 < model.config().n_layers) fo.stop_at_layer = layer + 1;
  model.forward(model.tokens_tensor(std::vector<int32_t>{0}), fo);
  return cache.at(hook);
}

void check_point(const Sae& sae, const Model& model, const std::string& hook, int64_t width, bool input) {
  const SaeConfig& c = sae.cfg;
  if (hook.empty())
    fail_input(c.source + ": the SAE names no hook point; give one with --hook (e.g. blocks.3.hook_resid_post)");
  if (model.hook_points().find(hook) < 0)
    fail_input(c.source + ": hook point '" + hook + "' does not exist in " + model.source() +
               " (`mechscope info --hooks` lists them)");
  at::Tensor act = probe_activation(model, hook);
  at::Tensor x = input ? sae.to_input(act) : act;
  if (x.size(-1) != width) {
    std::string how = input && c.reshape_hook_z ? " after concatenating its heads" :
                      input && c.hook_head_index >= 0 ? " in head " + std::to_string(c.hook_head_index) : "";
    fail_input(c.source + ": " + (input ? "d_in " : "d_out ") + std::to_string(width) + " does not match " + hook +
               " of " + model.source() + ", whose activation " + shape_str(act.sizes().vec()) + " has " +
               std::to_string(x.size(-1)) + " values per position" + how);
  }
}

}  // namespace

Status check_sae_fits(const Sae& sae, const Model& model) {
  return guard([&] {
    check_point(sae, model, sae.cfg.hook_name, sae.cfg.d_in, true);
    if (sae_is_transcoder(sae.cfg.arch) && !sae.cfg.hook_name_out.empty()) {
      check_point(sae, model, sae.cfg.hook_name_out, sae.cfg.d_out, false);
      if (model.hook_points().find(sae.cfg.hook_name_out) <= model.hook_points().find(sae.cfg.hook_name))
        fail_input(sae.cfg.source + ": the transcoder's output point " + sae.cfg.hook_name_out +
                   " does not come after its input point " + sae.cfg.hook_name + " in the forward pass");
    }
  });
}

}  // namespace ms
