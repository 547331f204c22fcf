// circuit-tracer's per-layer transcoder folders (as its TranscoderSet saves them, and as the
// Gemma Scope / Llama transcoder repositories it loads are laid out): layer_{i}.safetensors, one
// per layer, beside a config.yaml naming the hook points relative to the block. Semantics follow
// circuit-tracer at commit 196e2ce (transcoder/single_layer_transcoder.py, utils/hf_utils.py).
#include <ATen/ATen.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/features/sae_load_detail.h"
#include "core/io/safetensors.h"

namespace fs = std::filesystem;

namespace ms::sae_load_detail {
namespace {

// The few keys of circuit-tracer's config.yaml: flat `key: scalar` lines and one list of scalars
// (transcoders). Anything else (nesting, flow collections, anchors, multi-line strings) is refused.
struct TranscoderSetConfig {
  std::map<std::string, std::string> scalars;
  std::vector<std::string> transcoders;
};

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// A plain or quoted YAML scalar, with a trailing comment removed.
std::string yaml_scalar(std::string v, const std::string& where) {
  v = trim(v);
  if (!v.empty() && (v[0] == '"' || v[0] == '\'')) {
    size_t end = v.find(v[0], 1);
    if (end == std::string::npos) fail_input(where + ": unterminated quoted string");
    std::string rest = trim(v.substr(end + 1));
    if (!rest.empty() && rest[0] != '#') fail_input(where + ": unexpected text after a quoted string");
    std::string inner = v.substr(1, end - 1);
    if (v[0] == '"' && inner.find('\\') != std::string::npos)
      fail_input(where + ": escape sequences in quoted strings are not supported");
    return inner;
  }
  size_t hash = v.find(" #");
  if (hash != std::string::npos) v = trim(v.substr(0, hash));
  if (!v.empty() && std::string("[{&*!|>%@`").find(v[0]) != std::string::npos)
    fail_input(where + ": YAML value '" + v + "' uses syntax this reader does not understand "
               "(only plain or quoted scalars and one list of scalars)");
  return v;
}

TranscoderSetConfig read_config_yaml(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot open the file");
  TranscoderSetConfig cfg;
  std::string line, list_key;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string where = path + ":" + std::to_string(n);
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    if (t == "---") continue;
    const bool indented = line[0] == ' ' || line[0] == '\t';
    if (t[0] == '-') {
      if (list_key.empty()) fail_input(where + ": a list item outside a list");
      if (list_key != "transcoders") fail_input(where + ": only 'transcoders' may be a list");
      cfg.transcoders.push_back(yaml_scalar(t.substr(1), where));
      continue;
    }
    if (indented) fail_input(where + ": nested mappings are not supported (flat keys only)");
    size_t colon = t.find(':');
    if (colon == std::string::npos) fail_input(where + ": expected 'key: value'");
    std::string key = trim(t.substr(0, colon));
    std::string value = trim(t.substr(colon + 1));
    if (cfg.scalars.count(key) || (key == list_key)) fail_input(where + ": key '" + key + "' given twice");
    list_key.clear();
    if (value.empty() || value[0] == '#') {
      list_key = key;  // a block list follows (or a null value)
      if (key != "transcoders") cfg.scalars[key] = "";
      continue;
    }
    cfg.scalars[key] = yaml_scalar(value, where);
  }
  return cfg;
}

// A hook name relative to the block (circuit-tracer hooks blocks.{layer}.{name}) -> mechscope's.
// mlp.hook_in / mlp.hook_out are the hook points circuit-tracer wraps around the MLP: its input
// (after ln2) and its output.
std::string block_hook(const std::string& name, int layer) {
  std::string rel = name;
  if (rel == "mlp.hook_in") rel = "ln2.hook_normalized";
  if (rel == "mlp.hook_out") rel = "hook_mlp_out";
  if (rel.rfind("blocks.", 0) == 0) return rel;
  return "blocks." + std::to_string(layer) + "." + rel;
}

}  // namespace

int transcoder_file_layer(const std::string& path) {
  static const std::regex re("layer_([0-9]{1,6})\\.safetensors");
  std::smatch m;
  const std::string name = fs::path(path).filename().string();
  return std::regex_match(name, m, re) ? std::stoi(m[1].str()) : -1;
}

bool is_transcoder_set_folder(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "config.yaml", ec)) return true;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (transcoder_file_layer(e.path().string()) >= 0) return true;
  return false;
}

std::shared_ptr<Sae> load_transcoder_set(const std::string& dir, int layer, const SaeLoadOptions& opts) {
  const fs::path yaml = fs::path(dir) / "config.yaml";
  TranscoderSetConfig cfg;
  std::error_code ec;
  if (fs::exists(yaml, ec)) cfg = read_config_yaml(yaml.string());
  const std::string ys = yaml.string();
  static const std::set<std::string> kKnown = {"model_name", "model_kind", "feature_input_hook", "feature_output_hook",
                                               "activation", "transcoders", "scan", "scan_name", "repo_id",
                                               "revision", "subfolder"};
  for (const auto& [k, v] : cfg.scalars)
    if (!kKnown.count(k)) fail_input(ys + ": key '" + k + "' is not understood (known: model_name, model_kind, "
                                     "feature_input_hook, feature_output_hook, activation, transcoders, scan)");
  auto get = [&](const char* k, const std::string& dflt) {
    auto it = cfg.scalars.find(k);
    return it == cfg.scalars.end() || it->second.empty() ? dflt : it->second;
  };
  const std::string kind = get("model_kind", "transcoder_set");
  if (kind != "transcoder_set")
    fail_input(ys + ": model_kind '" + kind + "' is not supported (only transcoder_set: per-layer transcoders; "
               "cross-layer transcoders are not)");
  const std::string act = get("activation", "");
  if (!act.empty() && act != "relu" && act != "jumprelu")
    fail_input(ys + ": activation '" + act + "' is not supported (relu or jumprelu; topk transcoders are not)");

  // The layer's file: the config's transcoders list (paths relative to the folder) or layer_{i}.
  std::vector<int> layers;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    int l = transcoder_file_layer(e.path().string());
    if (l >= 0) layers.push_back(l);
  }
  std::sort(layers.begin(), layers.end());
  std::string have;
  for (int l : layers) have += (have.empty() ? "" : ", ") + std::to_string(l);
  if (layer < 0)
    fail_input(dir + ": a per-layer transcoder folder needs a layer (--layer N or the path of a "
               "layer_N.safetensors); it holds layers " + (have.empty() ? "none" : have));
  fs::path file = fs::path(dir) / ("layer_" + std::to_string(layer) + ".safetensors");
  if (layer < static_cast<int>(cfg.transcoders.size())) {
    const std::string& entry = cfg.transcoders[layer];
    if (entry.rfind("hf://", 0) != 0) {
      file = fs::path(entry).is_absolute() ? fs::path(entry) : fs::path(dir) / entry;
    } else if (!fs::exists(file, ec)) {
      fail_input(ys + ": layer " + std::to_string(layer) + " is " + entry + ", which is not on disk: download it "
                 "as " + file.string());
    }
  }
  if (!fs::exists(file, ec))
    fail_input(file.string() + ": no such file (the folder holds layers " + (have.empty() ? "none" : have) + ")");
  if (file.extension() != ".safetensors")
    fail_input(file.string() + ": only safetensors transcoder files are read here (a Gemma Scope params.npz "
               "loads as an SAE with --hook)");

  const std::string fname = file.string();
  TensorMap t = read_safetensors(fname);
  if (t.count("k")) fail_input(fname + ": a topk transcoder (tensor 'k') is not supported");
  for (const char* name : {"W_enc", "b_enc", "b_dec", "W_dec"})
    if (!t.count(name)) fail_input(fname + ": tensor '" + std::string(name) + "' is missing");
  if (t["W_enc"].dim() != 2) fail_input(fname + ": tensor 'W_enc' must be [d_transcoder, d_model]");
  auto sae = std::make_shared<Sae>();
  SaeConfig& c = sae->cfg;
  c.format = "circuit-tracer";
  c.source = fname;
  c.apply_b_dec_to_input = false;
  c.d_sae = t["W_enc"].size(0);
  c.d_in = t["W_enc"].size(1);
  c.d_out = t["b_dec"].dim() == 1 ? t["b_dec"].size(0) : -1;
  if (c.d_out < 1) fail_input(fname + ": tensor 'b_dec' must be [d_model]");
  t["W_enc"] = t["W_enc"].t().contiguous();  // circuit-tracer's F.linear orientation -> SAELens' [d_in, d_sae]
  at::Tensor skip;
  if (auto it = t.find("W_skip"); it != t.end()) {
    skip = it->second.contiguous();
    t.erase(it);
    expect_shape(skip, "W_skip", {c.d_out, c.d_in}, fname, "d_in " + std::to_string(c.d_in) + ", d_out " +
                 std::to_string(c.d_out) + " need");
  }
  bool jump = false;
  if (auto it = t.find("activation_function.threshold"); it != t.end()) {
    // circuit-tracer's JumpReLU is h * (h > threshold); SAELens' (mechscope's) relu(h) * (h > threshold)
    // agrees with it when no threshold is negative.
    if (it->second.numel() > 0 && it->second.min().item<float>() < 0)
      fail_input(fname + ": 'activation_function.threshold' has negative entries, for which circuit-tracer's "
                 "JumpReLU and SAELens' differ; not supported");
    t["threshold"] = it->second;
    t.erase(it);
    jump = true;
  }
  if (act == "jumprelu" && !jump) fail_input(fname + ": config.yaml says jumprelu but the file has no threshold");
  if (act == "relu" && jump) fail_input(fname + ": config.yaml says relu but the file has a JumpReLU threshold");
  c.arch = jump ? SaeArch::kJumpReluTranscoder : skip.defined() ? SaeArch::kSkipTranscoder : SaeArch::kTranscoder;
  if (c.arch == SaeArch::kSkipTranscoder) t["W_skip"] = skip;
  take_weights(*sae, std::move(t), fname);
  if (jump && skip.defined()) sae->w.W_skip = skip;  // applied whenever present (Sae::run)
  c.hook_name = block_hook(get("feature_input_hook", "mlp.hook_in"), layer);
  c.hook_name_out = block_hook(get("feature_output_hook", "mlp.hook_out"), layer);
  if (!opts.hook_name.empty()) c.hook_name = opts.hook_name;
  c.model_name = get("model_name", "");
  return sae;
}

}  // namespace ms::sae_load_detail
