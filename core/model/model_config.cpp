// Parsing Hugging Face config.json and GGUF metadata into ModelConfig, with validation.
#include "core/model/model_config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/json_input.h"
#include "core/io/gguf.h"

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
  } else {
    fail_input(path + ": rope_scaling type '" + type +
               "' is not supported (supported: linear, llama3)");
  }
}

ModelConfig parse_gpt2(const Fields& f, const std::string& path) {
  ModelConfig c;
  c.d_model = f.integer("n_embd");
  c.n_layers = f.integer("n_layer");
  c.n_heads = f.integer("n_head");
  c.n_kv_heads = c.n_heads;
  c.d_head = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
  c.d_mlp = f.integer("n_inner", 4 * c.d_model);
  c.d_vocab = f.integer("vocab_size");
  c.n_ctx = f.integer("n_positions", f.integer("n_ctx", 1024));
  c.norm = NormKind::kLayerNorm;
  c.norm_eps = f.number("layer_norm_epsilon", 1e-5);
  c.act = parse_act(f.string("activation_function", "gelu_new"), path);
  c.pos = PosKind::kLearned;
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  c.tie_embeddings = f.boolean("tie_word_embeddings", true);
  if (!f.boolean("scale_attn_weights", true) || f.boolean("scale_attn_by_inverse_layer_idx", false))
    fail_input(path + ": GPT-2 attention scaling other than 1/sqrt(d_head) "
               "(scale_attn_weights false or scale_attn_by_inverse_layer_idx true) is not supported");
  return c;
}

ModelConfig parse_neox(const Fields& f, const std::string& path) {
  ModelConfig c;
  c.d_model = f.integer("hidden_size");
  c.n_layers = f.integer("num_hidden_layers");
  c.n_heads = f.integer("num_attention_heads");
  c.n_kv_heads = c.n_heads;
  c.d_head = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
  c.d_mlp = f.integer("intermediate_size", 4 * c.d_model);
  c.d_vocab = f.integer("vocab_size");
  c.n_ctx = f.integer("max_position_embeddings", 2048);
  c.norm = NormKind::kLayerNorm;
  c.norm_eps = f.number("layer_norm_eps", 1e-5);
  c.act = parse_act(f.string("hidden_act", "gelu"), path);
  c.pos = PosKind::kRotary;
  double pct = f.number("rotary_pct", f.number("partial_rotary_factor", 0.25));
  if (pct <= 0 || pct > 1) fail_input(path + ": 'rotary_pct' must be in (0, 1], got " + std::to_string(pct));
  c.rotary_dim = static_cast<int64_t>(static_cast<double>(c.d_head) * pct);
  c.rope_theta = f.number("rotary_emb_base", f.number("rope_theta", 10000.0));
  c.parallel_attn_mlp = f.boolean("use_parallel_residual", true);
  bool bias = f.boolean("attention_bias", true);
  c.qkv_bias = c.o_bias = bias;
  c.mlp_bias = true;
  c.tie_embeddings = f.boolean("tie_word_embeddings", false);
  parse_rope_scaling(f, c, path);
  return c;
}

ModelConfig parse_llama_family(const Fields& f, const std::string& type, const std::string& path) {
  ModelConfig c;
  c.d_model = f.integer("hidden_size");
  c.n_layers = f.integer("num_hidden_layers");
  c.n_heads = f.integer("num_attention_heads");
  c.n_kv_heads = f.integer("num_key_value_heads", c.n_heads);
  c.d_head = f.integer("head_dim", c.n_heads > 0 ? c.d_model / c.n_heads : 0);
  c.d_mlp = f.integer("intermediate_size");
  c.d_vocab = f.integer("vocab_size");
  c.n_ctx = f.integer("max_position_embeddings", 2048);
  c.norm = NormKind::kRmsNorm;
  c.norm_eps = f.number("rms_norm_eps", 1e-6);
  c.act = parse_act(f.string("hidden_act", "silu"), path);
  c.gated_mlp = true;
  c.pos = PosKind::kRotary;
  c.rotary_dim = c.d_head;
  c.rope_theta = f.number("rope_theta", 10000.0);
  c.tie_embeddings = f.boolean("tie_word_embeddings", false);
  if (type == "qwen2") {
    c.qkv_bias = true;
    if (f.boolean("use_sliding_window", false))
      fail_input(path + ": qwen2 with use_sliding_window true is not supported");
  } else {
    bool bias = f.boolean("attention_bias", false);
    c.qkv_bias = c.o_bias = bias;
    c.mlp_bias = f.boolean("mlp_bias", false);
  }
  if (type == "mistral") c.sliding_window = f.integer("sliding_window", 0);
  parse_rope_scaling(f, c, path);
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
    ModelConfig c;
    if (type == "gpt2") {
      c = parse_gpt2(f, path);
    } else if (type == "gpt_neox") {
      c = parse_neox(f, path);
    } else if (type == "llama" || type == "mistral" || type == "qwen2") {
      c = parse_llama_family(f, type, path);
    } else {
      fail_input(path + ": unknown model_type '" + type +
                 "' (supported: gpt2, gpt_neox, llama, mistral, qwen2)");
    }
    c.model_type = type;
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

Result<ModelConfig> config_from_gguf(const GgufFile& g) {
  return guard([&]() -> ModelConfig {
    std::string where = g.describe();
    std::string arch = g.get_string("general.architecture");
    if (arch != "llama")
      fail_input(where + ": GGUF architecture '" + arch + "' is not supported (supported: llama)");
    const std::string p = arch + ".";
    ModelConfig c;
    c.model_type = "llama";
    c.d_model = g.get_int(p + "embedding_length");
    c.n_layers = g.get_int(p + "block_count");
    c.n_heads = g.get_int(p + "attention.head_count");
    c.n_kv_heads = g.get_int(p + "attention.head_count_kv", c.n_heads);
    c.d_head = g.get_int(p + "attention.key_length", c.n_heads > 0 ? c.d_model / c.n_heads : 0);
    c.d_mlp = g.get_int(p + "feed_forward_length");
    c.n_ctx = g.get_int(p + "context_length", 2048);
    c.norm = NormKind::kRmsNorm;
    c.norm_eps = g.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5);
    c.act = ActKind::kSilu;
    c.gated_mlp = true;
    c.pos = PosKind::kRotary;
    c.rotary_dim = g.get_int(p + "rope.dimension_count", c.d_head);
    c.rope_theta = g.get_float(p + "rope.freq_base", 10000.0);
    const TensorView* emb = g.find("token_embd.weight");
    if (!emb) fail_input(where + ": tensor 'token_embd.weight' is missing");
    c.d_vocab = g.get_int(p + "vocab_size", emb->shape.empty() ? 0 : emb->shape[0]);
    c.tie_embeddings = g.find("output.weight") == nullptr;
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
