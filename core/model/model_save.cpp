// Saving canonical weights under Hugging Face's tensor names and config fields, both read from
// the family's table (core/model/arch/).
#include "core/model/model_save.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/safetensors.h"
#include "core/model/arch/arch_spec.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

using Named = std::vector<std::pair<std::string, at::Tensor>>;

at::Tensor f32(const at::Tensor& t) { return t.detach().to(at::kCPU, at::kFloat).contiguous(); }

bool is_mlp_slot(Slot s) {
  return s == Slot::kInW || s == Slot::kInB || s == Slot::kOutW || s == Slot::kOutB;
}

// The canonical tensor of a slot as saved: an attention-only model's missing MLP is a one-unit
// MLP of zeros (sc.d_mlp is 1), a missing norm weight is ones, a missing bias zeros.
at::Tensor saved_slot(const ModelConfig& c, const ModelConfig& sc, const ModelWeights& w, Slot s,
                      int64_t layer) {
  std::vector<int64_t> shape = canonical_shape(s, Part::kAll, sc);
  if (c.attn_only() && is_mlp_slot(s)) return at::zeros(shape);
  const at::Tensor& t = slot_ref(w, s, layer);
  if (t.defined()) return t;
  return slot_kind(s) == SlotKind::kNormWeight ? at::ones(shape) : at::zeros(shape);
}

// Every tensor the family's table lists for this config, under its Hugging Face name and layout.
Named table_tensors(const ArchSpec& a, const ModelConfig& c, const ModelWeights& w) {
  ModelConfig sc = c;
  if (c.attn_only()) sc.d_mlp = 1;
  Named out;
  for_each_tensor(a, static_cast<int64_t>(w.layers.size()), [&](const TensorSpec& t, int64_t layer) {
    if (!tensor_present(t.when, sc)) return;
    at::Tensor full = saved_slot(c, sc, w, t.slot, layer);
    auto [first, rows] = part_rows(t.slot, t.part, sc);
    at::Tensor part = t.part == Part::kAll ? full : full.narrow(0, first, rows);
    out.emplace_back(tensor_name(t.hf.name, layer), f32(to_stored(part, t.hf.conv, t.part, sc)));
  });
  return out;
}

const ArchSpec& arch_to_save(const ModelConfig& c) {
  const ArchSpec* a = find_arch(c.model_type);
  if (!a) fail_usage("cannot save model_type '" + c.model_type + "'");
  return *a;
}

}  // namespace

std::string hf_config_json(const ModelConfig& c) {
  using json = nlohmann::json;
  json j = hf_config_fields(arch_to_save(c), c);
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) j["eos_token_id"] = c.eos_token_id;
  j["torch_dtype"] = "float32";
  return j.dump(2) + "\n";
}

Status save_model_hf(const ModelConfig& c, const ModelWeights& w, const std::string& dir,
                     const std::map<std::string, std::string>& extra_files, bool overwrite) {
  return guard([&] {
    const ArchSpec& a = arch_to_save(c);
    const ArchStructure& st = a.structure;
    if (c.norm != st.norm || c.pos != st.pos || c.gated_mlp != st.gated_mlp)
      fail_usage("a " + c.model_type + " model needs " + norm_name(st.norm) + " norm, " +
                 pos_name(st.pos) + " positions and " + (st.gated_mlp ? "a gated" : "an ungated") + " MLP");
    std::error_code ec;
    if (fs::exists(dir, ec) && !overwrite)
      fail_usage(dir + ": already exists (overwrite not allowed)");
    std::string text = hf_config_json(c);
    Named tensors = table_tensors(a, c, w);
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
    Status ok = write_safetensors((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}});
    if (!ok) throw InputError(ok.error().message, ok.error().code);
    fs::remove_all(dir, ec);
    fs::rename(tmp, dir, ec);
    if (ec) fail_input(dir + ": cannot move the saved model into place: " + ec.message());
  });
}

}  // namespace ms
