// Parsing Hugging Face config.json and GGUF metadata into ModelConfig, with validation; which
// fields a family has, and their defaults, come from its table (core/model/arch/).
#include "core/model/model_config.h"

#include <cmath>
#include <stdexcept>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/json_input.h"
#include "core/io/gguf.h"
#include "core/model/arch/arch_spec.h"

namespace ms {
namespace {

using json = nlohmann::json;

// Size limits of validate_config, far above any real model, so that size products (parameter
// counts, heads x head dims, memory estimates) never overflow 64 bits.
constexpr int64_t kMaxLayers = 1000;
constexpr int64_t kMaxDModel = int64_t{1} << 17;
constexpr int64_t kMaxHeads = int64_t{1} << 12;
constexpr int64_t kMaxDHead = int64_t{1} << 12;
constexpr int64_t kMaxDMlp = int64_t{1} << 20;
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxPositions = int64_t{1} << 24;

class Fields {
 public:
  Fields(const json& j, std::string path) : m_j(j), m_path(std::move(path)) {}

  bool has(const char* key) const { return m_j.contains(key) && !m_j.at(key).is_null(); }

  int64_t integer(const char* key) const {
    if (!has(key)) fail_input(m_path + ": missing required field '" + key + "'");
    return integer_value(key);
  }
  int64_t integer(const char* key, int64_t fallback) const {
    return has(key) ? integer_value(key) : fallback;
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = m_j.at(key);
    if (!v.is_number()) fail_input(m_path + ": field '" + key + "' must be a number, got " + json_brief(v));
    return v.get<double>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = m_j.at(key);
    if (!v.is_boolean()) fail_input(m_path + ": field '" + key + "' must be true or false, got " + json_brief(v));
    return v.get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = m_j.at(key);
    if (!v.is_string()) fail_input(m_path + ": field '" + key + "' must be a string, got " + json_brief(v));
    return v.get<std::string>();
  }
  // First integer of an int-or-list field (eos_token_id may be a list), or -1. An id outside
  // 0..2^31-1 is an error, never truncated (4294967297 must not become 1).
  int32_t token_id(const char* key) const {
    if (!has(key)) return -1;
    const json& v = m_j.at(key);
    const json* id = v.is_array() ? (v.empty() ? nullptr : &v[0]) : &v;
    if (!id || !id->is_number()) return -1;
    return static_cast<int32_t>(json_int(*id, 0, INT32_MAX, m_path + ": field '" + key + "'"));
  }
  const json& raw(const char* key) const { return m_j.at(key); }

 private:
  // Integers are bounded to 32 bits here (every size is far smaller; validate_config has the
  // real limits), so derived products such as 4 * n_embd cannot overflow.
  int64_t integer_value(const char* key) const {
    return json_int(m_j.at(key), INT32_MIN, INT32_MAX, m_path + ": field '" + key + "'");
  }
  const json& m_j;
  std::string m_path;
};

ActKind parse_act(const std::string& name, const std::string& path) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return ActKind::kGeluNew;
  if (name == "gelu") return ActKind::kGelu;
  if (name == "silu" || name == "swish") return ActKind::kSilu;
  if (name == "relu") return ActKind::kRelu;
  fail_input(path + ": activation '" + name +
             "' is not supported (supported: gelu_new, gelu_pytorch_tanh, gelu, silu, relu)");
}

void parse_rope_scaling(const Fields& f, ModelConfig& c, const std::string& path) {
  if (!f.has("rope_scaling")) return;
  const json& rs = f.raw("rope_scaling");
  if (!rs.is_object()) fail_input(path + ": 'rope_scaling' must be an object or null");
  std::string type = rs.value("rope_type", rs.value("type", std::string()));
  if (type == "default" || type.empty()) return;
  Fields s(rs, path + " rope_scaling");
  c.rope_scaling_factor = s.number("factor", 1.0);
  if (type == "linear") {
    c.rope_scaling_type = type;
  } else if (type == "llama3") {
    c.rope_scaling_type = type;
    c.rope_low_freq_factor = s.number("low_freq_factor", 1.0);
    c.rope_high_freq_factor = s.number("high_freq_factor", 4.0);
    c.rope_original_max_pos = s.integer("original_max_position_embeddings", 8192);
  } else if (type == "longrope" || type == "su") {
    fail_input(path + ": rope_scaling type '" + type + "' (LongRoPE, as in the 128k-context Phi-3 models) is "
               "not supported; the 4k-context models of the family load (supported: linear, llama3)");
  } else {
    fail_input(path + ": rope_scaling type '" + type +
               "' is not supported (supported: linear, llama3)");
  }
}

// Reads one config field by the family's table: the first key present (type-checked), else the
// default (null: derived in apply_derived).
json read_field(const Fields& f, const ConfigField& cf) {
  for (const std::string& key : cf.keys) {
    if (!f.has(key.c_str())) continue;
    switch (cf.field) {
      case Field::kNormEps: case Field::kRotaryFraction: case Field::kRopeTheta:
      case Field::kQueryPreAttnScalar: case Field::kAttnSoftcap: case Field::kFinalSoftcap:
      case Field::kRopeLocalTheta:
        return f.number(key.c_str(), 0.0);
      case Field::kLayerTypes: return f.raw(key.c_str());
      case Field::kAct: return f.string(key.c_str(), "");
      case Field::kParallelResidual: case Field::kAttnBias: case Field::kMlpBias:
      case Field::kTieEmbeddings:
        return f.boolean(key.c_str(), false);
      default: return f.integer(key.c_str());
    }
  }
  if (cf.required) f.integer(cf.keys.at(0).c_str());  // throws "missing required field"
  return cf.def;
}

// What set_field saw, for the derived defaults.
struct Seen {
  bool kv = false, d_head = false, d_mlp = false;
  double rotary_fraction = 1.0;
  int64_t sliding_pattern = 0;  // every n-th layer global (when no layer_types list)
};

// A positive, finite number (a soft-capping value, a scalar): else bad input naming the key.
double positive_number(const json& v, const ConfigField& cf, const std::string& path) {
  const double x = v.get<double>();
  if (!(x > 0) || !std::isfinite(x))
    fail_input(path + ": '" + cf.keys.at(0) + "' must be a positive number or null, got " + json_brief(v));
  return x;
}

// layer_types: "sliding_attention" (local) or "full_attention" for each layer.
std::vector<char> parse_layer_types(const json& v, const std::string& path) {
  if (!v.is_array()) fail_input(path + ": 'layer_types' must be a list of strings, got " + json_brief(v));
  if (v.size() > 1000) fail_input(path + ": 'layer_types' has " + std::to_string(v.size()) + " entries (the limit is 1000 layers)");
  std::vector<char> local;
  for (const json& t : v) {
    if (t == "sliding_attention") local.push_back(1);
    else if (t == "full_attention") local.push_back(0);
    else fail_input(path + ": 'layer_types' entry " + json_brief(t) +
                    " is not supported (supported: sliding_attention, full_attention)");
  }
  return local;
}

void set_field(ModelConfig& c, Seen& seen, const ConfigField& cf, const json& v,
               const std::string& path) {
  if (v.is_null()) return;  // derived
  switch (cf.field) {
    case Field::kDModel: c.d_model = v.get<int64_t>(); break;
    case Field::kNLayers: c.n_layers = v.get<int64_t>(); break;
    case Field::kNHeads: c.n_heads = v.get<int64_t>(); break;
    case Field::kNKvHeads: c.n_kv_heads = v.get<int64_t>(); seen.kv = true; break;
    case Field::kDHead: c.d_head = v.get<int64_t>(); seen.d_head = true; break;
    case Field::kDMlp: c.d_mlp = v.get<int64_t>(); seen.d_mlp = true; break;
    case Field::kDVocab: c.d_vocab = v.get<int64_t>(); break;
    case Field::kNCtx: c.n_ctx = v.get<int64_t>(); break;
    case Field::kNormEps: c.norm_eps = v.get<double>(); break;
    case Field::kAct: c.act = parse_act(v.get<std::string>(), path); break;
    case Field::kRotaryFraction: {
      double pct = v.get<double>();
      if (pct <= 0 || pct > 1)
        fail_input(path + ": '" + cf.keys.at(0) + "' must be in (0, 1], got " + std::to_string(pct));
      seen.rotary_fraction = pct;
      break;
    }
    case Field::kRopeTheta: c.rope_theta = v.get<double>(); break;
    case Field::kParallelResidual: c.parallel_attn_mlp = v.get<bool>(); break;
    case Field::kAttnBias: c.qkv_bias = c.o_bias = v.get<bool>(); break;
    case Field::kMlpBias: c.mlp_bias = v.get<bool>(); break;
    case Field::kTieEmbeddings: c.tie_embeddings = v.get<bool>(); break;
    case Field::kSlidingWindow: c.sliding_window = v.get<int64_t>(); break;
    case Field::kQueryPreAttnScalar: c.query_pre_attn_scalar = positive_number(v, cf, path); break;
    case Field::kAttnSoftcap: c.attn_softcap = positive_number(v, cf, path); break;
    case Field::kFinalSoftcap: c.final_softcap = positive_number(v, cf, path); break;
    case Field::kLayerTypes: c.layer_local = parse_layer_types(v, path); break;
    case Field::kSlidingPattern: seen.sliding_pattern = v.get<int64_t>(); break;
    case Field::kRopeLocalTheta: c.rope_local_theta = positive_number(v, cf, path); break;
  }
}

ModelConfig structure_of(const ArchSpec& a) {
  ModelConfig c;
  c.model_type = a.model_type;
  c.norm = a.structure.norm;
  c.pos = a.structure.pos;
  c.gated_mlp = a.structure.gated_mlp;
  c.parallel_attn_mlp = a.structure.parallel_attn_mlp;
  c.qkv_bias = a.structure.qkv_bias;
  c.o_bias = a.structure.o_bias;
  c.mlp_bias = a.structure.mlp_bias;
  c.pre_norm = a.structure.pre_norm;
  c.post_norm = a.structure.post_norm;
  c.qk_norm = a.structure.qk_norm;
  c.embed_scaled = a.structure.embed_scaled;
  return c;
}

// The defaults the table leaves to other fields (ConfigField::def null).
void apply_derived(ModelConfig& c, const Seen& seen) {
  if (!seen.kv) c.n_kv_heads = c.n_heads;
  if (!seen.d_head) c.d_head = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
  if (!seen.d_mlp) c.d_mlp = 4 * c.d_model;
  if (c.pos == PosKind::kRotary && c.rotary_dim == 0)
    c.rotary_dim = static_cast<int64_t>(static_cast<double>(c.d_head) * seen.rotary_fraction);
  if (c.layer_local.empty() && seen.sliding_pattern > 0 && c.n_layers > 0 && c.n_layers <= kMaxLayers)
    for (int64_t l = 0; l < c.n_layers; ++l) c.layer_local.push_back((l + 1) % seen.sliding_pattern != 0);
}

ModelConfig parse_by_table(const ArchSpec& a, const Fields& f, const std::string& path) {
  ModelConfig c = structure_of(a);
  Seen seen;
  for (const ConfigField& cf : a.config) set_field(c, seen, cf, read_field(f, cf), path);
  apply_derived(c, seen);
  for (const RefusedSetting& r : a.refused)
    if (f.boolean(r.key, !r.refused_value) == r.refused_value) fail_input(path + ": " + r.why);
  if (c.pos == PosKind::kRotary) parse_rope_scaling(f, c, path);
  return c;
}

}  // namespace

const char* norm_name(NormKind k) { return k == NormKind::kLayerNorm ? "LN" : "RMS"; }
const char* act_name(ActKind k) {
  switch (k) {
    case ActKind::kGeluNew: return "gelu_new";
    case ActKind::kGelu: return "gelu";
    case ActKind::kSilu: return "silu";
    case ActKind::kRelu: return "relu";
  }
  return "?";
}
double ModelConfig::attn_scale() const {
  return 1.0 / std::sqrt(query_pre_attn_scalar > 0 ? query_pre_attn_scalar : static_cast<double>(d_head));
}

const char* pos_name(PosKind k) {
  switch (k) {
    case PosKind::kLearned: return "standard";
    case PosKind::kRotary: return "rotary";
    case PosKind::kNone: return "none";
  }
  return "?";
}

std::string ModelConfig::to_json() const {
  json j;
  j["model_type"] = model_type;
  j["n_layers"] = n_layers;
  j["d_model"] = d_model;
  j["n_heads"] = n_heads;
  j["n_key_value_heads"] = n_kv_heads;
  j["d_head"] = d_head;
  j["d_mlp"] = d_mlp;
  j["d_vocab"] = d_vocab;
  j["n_ctx"] = n_ctx;
  j["normalization_type"] = norm_name(norm);
  j["eps"] = norm_eps;
  j["act_fn"] = act_name(act);
  j["positional_embedding_type"] = pos_name(pos);
  if (pos == PosKind::kRotary) {
    j["rotary_dim"] = rotary_dim;
    j["rotary_base"] = rope_theta;
    if (!rope_scaling_type.empty()) {
      j["rope_scaling"] = {{"type", rope_scaling_type}, {"factor", rope_scaling_factor}};
    }
  }
  j["parallel_attn_mlp"] = parallel_attn_mlp;
  j["gated_mlp"] = gated_mlp;
  j["attn_only"] = attn_only();
  j["tie_embeddings"] = tie_embeddings;
  if (sliding_window > 0) j["sliding_window"] = sliding_window;
  if (!layer_local.empty()) {
    json types = json::array();
    for (char l : layer_local) types.push_back(l ? "local" : "global");
    j["attn_types"] = types;
  }
  if (rope_local_theta > 0) j["rotary_base_local"] = rope_local_theta;
  if (!pre_norm) j["pre_norm"] = false;
  if (post_norm) j["use_normalization_before_and_after"] = pre_norm;
  if (post_norm) j["post_norm"] = true;
  if (qk_norm != QkNorm::kNone) j["qk_norm"] = qk_norm == QkNorm::kPerHead ? "per_head" : "all_heads";
  if (embed_scaled) j["embed_scale"] = std::sqrt(static_cast<double>(d_model));
  if (query_pre_attn_scalar > 0) j["attn_scale"] = std::sqrt(query_pre_attn_scalar);
  if (attn_softcap > 0) j["attn_scores_soft_cap"] = attn_softcap;
  if (final_softcap > 0) j["output_logits_soft_cap"] = final_softcap;
  return j.dump();
}

Status validate_config(const ModelConfig& c, const std::string& where) {
  return guard([&] {
    auto positive = [&](int64_t v, const char* name) {
      if (v <= 0) fail_input(where + ": " + name + " must be positive, got " + std::to_string(v));
    };
    positive(c.n_layers, "number of layers");
    positive(c.d_model, "hidden size");
    positive(c.n_heads, "number of attention heads");
    positive(c.n_kv_heads, "number of key/value heads");
    positive(c.d_head, "head dimension");
    positive(c.d_vocab, "vocabulary size");
    positive(c.n_ctx, "maximum positions");
    if (c.d_mlp < 0) fail_input(where + ": MLP size must not be negative");
    if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0)
      fail_input(where + ": " + std::to_string(c.n_heads) + " attention heads are not a multiple of " +
                 std::to_string(c.n_kv_heads) + " key/value heads");
    if (c.pos == PosKind::kRotary && (c.rotary_dim <= 0 || c.rotary_dim > c.d_head || c.rotary_dim % 2))
      fail_input(where + ": rotary dimension " + std::to_string(c.rotary_dim) +
                 " must be even and in (0, d_head = " + std::to_string(c.d_head) + "]");
    if (!(c.norm_eps > 0) || !std::isfinite(c.norm_eps))
      fail_input(where + ": normalization epsilon must be positive");
    if (c.pos == PosKind::kRotary && (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)))
      fail_input(where + ": rotary base (rope_theta) must be a positive number");
    if (c.sliding_window < 0) fail_input(where + ": sliding window must not be negative");
    if (!c.rope_scaling_type.empty() && (!(c.rope_scaling_factor > 0) || !std::isfinite(c.rope_scaling_factor)))
      fail_input(where + ": rope scaling factor must be a positive number");
    if (!c.layer_local.empty() && static_cast<int64_t>(c.layer_local.size()) != c.n_layers)
      fail_input(where + ": 'layer_types' lists " + std::to_string(c.layer_local.size()) + " layers, the model has " +
                 std::to_string(c.n_layers));
    for (auto [v, name] : {std::pair{c.rope_local_theta, "local rotary base"},
                           std::pair{c.query_pre_attn_scalar, "query_pre_attn_scalar"},
                           std::pair{c.attn_softcap, "attention soft-capping"},
                           std::pair{c.final_softcap, "final logit soft-capping"}})
      if (v < 0 || !std::isfinite(v)) fail_input(where + ": " + name + " must be positive");
    // Limits well above any real model; they keep every size product (parameter counts, head
    // counts x head dims, memory estimates) far from 64-bit overflow.
    auto at_most = [&](int64_t v, int64_t limit, const char* name) {
      if (v > limit)
        fail_input(where + ": " + name + " " + std::to_string(v) + " is implausible (the limit is " +
                   std::to_string(limit) + ")");
    };
    at_most(c.n_layers, kMaxLayers, "number of layers");
    at_most(c.d_model, kMaxDModel, "hidden size");
    at_most(c.n_heads, kMaxHeads, "number of attention heads");
    at_most(c.d_head, kMaxDHead, "head dimension");
    at_most(c.d_mlp, kMaxDMlp, "MLP size");
    at_most(c.d_vocab, kMaxVocab, "vocabulary size");
    at_most(c.n_ctx, kMaxPositions, "maximum positions");
    at_most(c.sliding_window, kMaxPositions, "sliding window");
    at_most(c.q_dim(), kMaxDModel * 8, "number of heads x head dimension");
  });
}

Result<ModelConfig> parse_hf_config_text(const std::string& text, const std::string& path) {
  return guard([&]() -> ModelConfig {
    const json j = parse_json_input(text, path);
    if (!j.is_object()) fail_input(path + ": expected a JSON object");
    Fields f(j, path);
    std::string type = f.string("model_type", "");
    if (type.empty()) fail_input(path + ": missing 'model_type'");
    const ArchSpec* arch = find_arch(type);
    if (!arch)
      fail_input(path + ": unknown model_type '" + type + "' (supported: " + arch_names() + ")");
    ModelConfig c = parse_by_table(*arch, f, path);
    c.bos_token_id = f.token_id("bos_token_id");
    c.eos_token_id = f.token_id("eos_token_id");
    Status st = validate_config(c, path);
    if (!st) throw InputError(st.error().message);
    return c;
  });
}

Result<ModelConfig> parse_hf_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{ErrorCode::kBadInput, path + ": cannot read the file"};
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_hf_config_text(ss.str(), path);
}

namespace {

// The GGUF name of a slot in the family's table ("token_embd.weight"; layer 0 for per-layer
// slots), or "" when it has none.
std::string gguf_name_of(const ArchSpec& a, Slot slot) {
  for (const TensorSpec& t : a.tensors)
    if (t.slot == slot && t.gguf.name) return tensor_name(t.gguf.name, 0);
  return "";
}

bool has_field(const ArchSpec& a, Field f) {
  for (const ConfigField& cf : a.config)
    if (cf.field == f) return true;
  return false;
}

// A family's own GGUF key, read as set_field expects its field (a soft-cap of 0 means none, as
// llama.cpp reads it), with the key's full name in messages.
void read_gguf_field(const GgufFile& g, const ArchSpec& a, const GgufField& gf, const std::string& prefix,
                     ModelConfig& c, Seen& seen, const std::string& where) {
  const ConfigField* table = nullptr;
  for (const ConfigField& cf : a.config)
    if (cf.field == gf.field) table = &cf;
  if (!table) throw std::logic_error("GGUF key " + std::string(gf.key) + " sets a field the family's table lacks");
  ConfigField cf = *table;
  cf.keys = {prefix + gf.key};
  json v = gf.def;
  if (g.get(cf.keys[0])) {
    switch (gf.field) {
      case Field::kAttnSoftcap: case Field::kFinalSoftcap: {
        const double x = g.get_float(cf.keys[0]);
        if (x == 0) {
          (gf.field == Field::kAttnSoftcap ? c.attn_softcap : c.final_softcap) = 0;
          return;
        }
        v = x;
        break;
      }
      case Field::kRopeLocalTheta: case Field::kQueryPreAttnScalar: v = g.get_float(cf.keys[0]); break;
      default: v = g.get_int(cf.keys[0]); break;
    }
  }
  set_field(c, seen, cf, v, where);
}

// rope.scaling: linear (llama.cpp's default type when a factor is given) or none; YaRN and
// LongRoPE are refused.
void read_gguf_rope_scaling(const GgufFile& g, const std::string& p, ModelConfig& c, const std::string& where) {
  const std::string type = g.get_string(p + "rope.scaling.type", "");
  double factor = g.get_float(p + "rope.scaling.factor", 0.0);
  if (factor == 0) factor = g.get_float(p + "rope.scale_linear", 0.0);
  if (type == "none") return;
  if (!type.empty() && type != "linear")
    fail_input(where + ": '" + p + "rope.scaling.type' is '" + type + "', not supported (supported: none, linear)");
  if (!(factor >= 0) || !std::isfinite(factor))
    fail_input(where + ": '" + p + "rope.scaling.factor' must be a positive number");
  if (factor > 0 && factor != 1) {
    c.rope_scaling_type = "linear";
    c.rope_scaling_factor = factor;
  }
}

}  // namespace

Result<ModelConfig> config_from_gguf(const GgufFile& g) {
  return guard([&]() -> ModelConfig {
    std::string where = g.describe();
    std::string arch = g.get_string("general.architecture");
    const ArchSpec* a = find_arch_gguf(arch);
    if (!a)
      fail_input(where + ": GGUF architecture '" + arch + "' is not supported (supported: " +
                 arch_names(", ", true) + ")");
    for (const RefusedTensor& r : a->gguf_refused)
      if (g.find(r.name)) fail_input(where + ": tensor '" + r.name + "': " + r.why);
    // The family's structure and config defaults, then llama.cpp's metadata keys: first those
    // every architecture has under its name, then the family's own (ArchSpec::gguf_config).
    ModelConfig c = structure_of(*a);
    Seen seen;
    for (const ConfigField& cf : a->config)
      if (!cf.required) set_field(c, seen, cf, cf.def, where);
    const std::string p = arch + ".";
    c.d_model = g.get_int(p + "embedding_length");
    c.n_layers = g.get_int(p + "block_count");
    c.n_heads = g.get_int(p + "attention.head_count");
    c.n_kv_heads = g.get_int(p + "attention.head_count_kv", c.n_heads);
    c.d_head = g.get_int(p + "attention.key_length", c.n_heads > 0 ? c.d_model / c.n_heads : 0);
    c.d_mlp = g.get_int(p + "feed_forward_length");
    c.n_ctx = g.get_int(p + "context_length", 2048);
    const bool rms = c.norm == NormKind::kRmsNorm;
    c.norm_eps = g.get_float(p + (rms ? "attention.layer_norm_rms_epsilon" : "attention.layer_norm_epsilon"), 1e-5);
    if (c.pos == PosKind::kRotary) {
      c.rotary_dim = g.get_int(p + "rope.dimension_count", c.d_head);
      c.rope_theta = g.get_float(p + "rope.freq_base", 10000.0);
      read_gguf_rope_scaling(g, p, c, where);
    }
    for (const GgufField& gf : a->gguf_config) read_gguf_field(g, *a, gf, p, c, seen, where);
    if (a->gguf_wide_scalar_layers > 0 && c.n_heads > 0)
      c.query_pre_attn_scalar = static_cast<double>(
          c.n_layers == a->gguf_wide_scalar_layers ? c.d_model / c.n_heads : c.d_head);
    // The local/global layer pattern (Gemma), once n_layers is known.
    if (seen.sliding_pattern > 0 && c.n_layers > 0 && c.n_layers <= kMaxLayers)
      for (int64_t l = 0; l < c.n_layers; ++l) c.layer_local.push_back((l + 1) % seen.sliding_pattern != 0);
    const std::string emb_name = gguf_name_of(*a, Slot::kEmbed);
    const TensorView* emb = g.find(emb_name);
    if (!emb) fail_input(where + ": tensor '" + emb_name + "' is missing");
    c.d_vocab = g.get_int(p + "vocab_size", emb->shape.empty() ? 0 : emb->shape[0]);
    // What GGUF says by the tensors it holds: a tied output (no output.weight) and the biases a
    // config.json switch would turn on (attention_bias, mlp_bias).
    c.tie_embeddings = g.find(gguf_name_of(*a, Slot::kUnembed)) == nullptr;
    auto present = [&](Slot s) {
      const std::string n = gguf_name_of(*a, s);
      return !n.empty() && g.find(n) != nullptr;
    };
    if (has_field(*a, Field::kAttnBias)) {
      c.qkv_bias = present(Slot::kQkvB);
      c.o_bias = present(Slot::kOB);
    }
    if (has_field(*a, Field::kMlpBias)) c.mlp_bias = present(Slot::kInB) || present(Slot::kOutB);
    for (auto [key, id] : {std::pair{"tokenizer.ggml.bos_token_id", &c.bos_token_id},
                           std::pair{"tokenizer.ggml.eos_token_id", &c.eos_token_id}}) {
      const int64_t v = g.get_int(key, -1);
      if (v < -1 || v > INT32_MAX)
        fail_input(where + ": metadata key '" + key + "' holds " + std::to_string(v) +
                   ", not a token id (0 to 2^31-1)");
      *id = static_cast<int32_t>(v);
    }
    Status st = validate_config(c, where);
    if (!st) throw InputError(st.error().message);
    return c;
  });
}

}  // namespace ms
