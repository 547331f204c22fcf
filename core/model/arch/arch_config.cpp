// The table's config side for writing: a ModelConfig's fields as config.json values, the object
// the saver writes, and the one `zoo random` writes (sizes, table defaults, random_overrides).
#include <stdexcept>

#include "core/model/arch/arch_spec.h"

namespace ms {

using json = nlohmann::json;

json field_value(Field f, const ModelConfig& c) {
  switch (f) {
    case Field::kDModel: return c.d_model;
    case Field::kNLayers: return c.n_layers;
    case Field::kNHeads: return c.n_heads;
    case Field::kNKvHeads: return c.n_kv_heads;
    case Field::kDHead: return c.d_head;
    // An attention-only model is saved with a one-unit MLP of zeros (model_save.h).
    case Field::kDMlp: return c.attn_only() ? 1 : c.d_mlp;
    case Field::kDVocab: return c.d_vocab;
    case Field::kNCtx: return c.n_ctx;
    case Field::kNormEps: return c.norm_eps;
    case Field::kAct: return act_name(c.act);
    case Field::kRotaryFraction: return static_cast<double>(c.rotary_dim) / static_cast<double>(c.d_head);
    case Field::kRopeTheta: return c.rope_theta;
    case Field::kParallelResidual: return c.parallel_attn_mlp;
    case Field::kAttnBias: return c.qkv_bias;
    case Field::kMlpBias: return c.mlp_bias;
    case Field::kTieEmbeddings: return c.tie_embeddings;
    case Field::kSlidingWindow: return c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
    case Field::kQueryPreAttnScalar: return c.query_pre_attn_scalar;
    case Field::kAttnSoftcap: return c.attn_softcap > 0 ? json(c.attn_softcap) : json(nullptr);
    case Field::kFinalSoftcap: return c.final_softcap > 0 ? json(c.final_softcap) : json(nullptr);
    case Field::kLayerTypes: {
      json types = json::array();
      for (int64_t l = 0; l < c.n_layers; ++l)
        types.push_back(c.window(l) > 0 ? "sliding_attention" : "full_attention");
      return types;
    }
    case Field::kSlidingPattern: return nullptr;  // read only: layer_types says it
    case Field::kRopeLocalTheta: return c.rope_local_theta;
  }
  return nullptr;
}

json hf_config_fields(const ArchSpec& a, const ModelConfig& c) {
  json j = {{"model_type", a.model_type}, {"architectures", {a.hf_class}}};
  for (const ConfigField& f : a.config) {
    if (f.save == Save::kNever) continue;
    json v = field_value(f.field, c);
    if (f.save == Save::kIfNotDefault && v == f.def) continue;
    for (size_t k = 0; k < (f.save_aliases ? f.keys.size() : 1); ++k) j[f.keys[k]] = v;
  }
  return j;
}

namespace {

// The size a random model gives a field, or null when the field is not a size.
json random_size(Field f, const ArchSpec& a, const ArchSizes& s) {
  switch (f) {
    case Field::kDModel: return s.d_model;
    case Field::kNLayers: return s.n_layers;
    case Field::kNHeads: return s.n_heads;
    case Field::kNKvHeads: return s.n_kv_heads > 0 ? s.n_kv_heads : s.n_heads;
    case Field::kDVocab: return s.d_vocab;
    case Field::kNCtx: return s.n_ctx;
    case Field::kDHead: return s.d_head > 0 ? s.d_head : s.n_heads > 0 ? s.d_model / s.n_heads : 0;
    case Field::kDMlp:
      if (s.d_mlp > 0) return s.d_mlp;
      // Gated MLPs: 8/3 d_model rounded up to 64 (the parameters of a 4 d_model MLP).
      return a.structure.gated_mlp ? ((8 * s.d_model / 3 + 63) / 64) * 64 : 4 * s.d_model;
    default: return nullptr;
  }
}

}  // namespace

json random_hf_config(const ArchSpec& a, const ArchSizes& s) {
  json j = {{"model_type", a.model_type}, {"architectures", {a.hf_class}}};
  for (const ConfigField& f : a.config) {
    if (f.save != Save::kAlways) continue;
    json size = random_size(f.field, a, s);
    j[f.keys[0]] = size.is_null() ? f.def : size;
  }
  for (const auto& [key, value] : a.random_overrides.items()) j[key] = value;
  return j;
}

std::vector<ConfigField> hf_decoder_config() {
  return {
      required_field(Field::kDModel, {"hidden_size"}),
      required_field(Field::kNLayers, {"num_hidden_layers"}),
      required_field(Field::kNHeads, {"num_attention_heads"}),
      {Field::kNKvHeads, {"num_key_value_heads"}, nullptr},
      {Field::kDHead, {"head_dim"}, nullptr, Save::kSaver},
      required_field(Field::kDMlp, {"intermediate_size"}),
      required_field(Field::kDVocab, {"vocab_size"}),
      {Field::kNCtx, {"max_position_embeddings"}, 2048},
      {Field::kNormEps, {"rms_norm_eps"}, 1e-6},
      {Field::kAct, {"hidden_act"}, "silu"},
      {Field::kRopeTheta, {"rope_theta"}, 10000.0},
      {Field::kTieEmbeddings, {"tie_word_embeddings"}, false},
  };
}

void set_field_default(std::vector<ConfigField>& fields, Field f, nlohmann::json def) {
  for (ConfigField& cf : fields)
    if (cf.field == f) {
      cf.def = std::move(def);
      return;
    }
  throw std::logic_error("set_field_default: the field is not in the list");
}

void set_field_default(std::vector<ConfigField>& fields, Field f, nlohmann::json def, Save save) {
  set_field_default(fields, f, std::move(def));
  for (ConfigField& cf : fields)
    if (cf.field == f) cf.save = save;
}

}  // namespace ms
