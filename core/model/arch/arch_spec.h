// ArchSpec: one table per architecture family (llama.cpp's llama-arch.cpp, TransformerLens'
// weight_conversions/): Hugging Face and GGUF names, config.json fields and defaults, how each
// stored tensor maps onto the canonical ModelWeights, and the structure the forward pass reads.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/model/model_config.h"

namespace ms {

struct ModelWeights;

// Canonical weight slots: the members of ModelWeights / LayerWeights (core/model/model.h).
enum class Slot {
  kEmbed, kPosEmbed, kFinalNormW, kFinalNormB, kUnembed, kUnembedBias,       // model-wide
  kLn1W, kLn1B, kQkvW, kQkvB, kOW, kOB, kLn2W, kLn2B, kInW, kInB, kOutW, kOutB,  // per layer
  kQNormW, kKNormW, kLn1PostW, kLn2PostW  // per layer: q/k norms, norms after attention and MLP
};
// The rows of a fused canonical slot that one stored tensor holds (w_qkv: q heads, k heads,
// v heads; gated w_in: gate rows, up rows).
enum class Part { kAll, kQ, kK, kV, kGate, kUp };
// How a stored tensor's layout relates to its canonical part: loading applies it, saving
// inverts it. Adding a fused or permuted layout is adding a kind here and in arch_tensors.cpp.
enum class Conv {
  kNone,       // the same layout ([out, in] like nn.Linear)
  kTranspose,  // GPT-2's Conv1D: stored [in, out]
  kNeoxQkv,    // NeoX fused qkv, per head [head, (q|k|v), d_head, ...]
  kMetaRope,   // GGUF q/k: each head's rows in Meta's interleaved RoPE order (pairs 2i, 2i+1)
  kPlusOne,    // Gemma's RMSNorm weights: the stored w scales by (1 + w); canonical = stored + 1
               // (GGUF files hold 1 + w already: convert_hf_to_gguf.py adds the 1)
};
// When a tensor is present, decided by the parsed config.
enum class When { kAlways, kQkvBias, kOBias, kMlpBias, kUntied };

struct StoredName {
  const char* name = nullptr;  // "model.layers.{L}.self_attn.q_proj.weight"; nullptr: absent
  Conv conv = Conv::kNone;
};
// One stored tensor: where it goes in the canonical layout and its name in each format.
// Names of per-layer slots hold "{L}" for the layer index.
struct TensorSpec {
  Slot slot;
  Part part;
  When when;
  StoredName hf;
  StoredName gguf;
};

// Canonical quantities a config.json field sets (ModelConfig members; kAttnBias sets both the
// q/k/v and the output bias; kRotaryFraction gives rotary_dim = d_head * fraction).
enum class Field {
  kDModel, kNLayers, kNHeads, kNKvHeads, kDHead, kDMlp, kDVocab, kNCtx, kNormEps, kAct,
  kRotaryFraction, kRopeTheta, kParallelResidual, kAttnBias, kMlpBias, kTieEmbeddings,
  kSlidingWindow,
  // Gemma 2/3: query_pre_attn_scalar, attention / final logit soft-capping (null: off), which
  // layers are local (layer_types list, else every sliding_window_pattern-th layer is global),
  // the local layers' RoPE base.
  kQueryPreAttnScalar, kAttnSoftcap, kFinalSoftcap, kLayerTypes, kSlidingPattern, kRopeLocalTheta
};
// Who writes a field into config.json.
enum class Save {
  kAlways,        // the saver and `zoo random`
  kSaver,         // the saver only (a random model leaves it to its default)
  kIfNotDefault,  // the saver, when the value differs from the default
  kNever,         // read only
};
struct ConfigField {
  Field field;
  std::vector<std::string> keys;  // read: the first present wins; written: keys[0]
  // The default when no key is present. null: derived (n_kv_heads = n_heads, d_head =
  // d_model / n_heads, d_mlp = 4 * d_model, sliding_window none).
  nlohmann::json def;
  Save save = Save::kAlways;
  bool required = false;      // absent is an error
  bool save_aliases = false;  // the saver writes every key (legacy readers look for the others)
};
inline ConfigField required_field(Field f, std::vector<std::string> keys) {
  return {f, std::move(keys), nullptr, Save::kAlways, true, false};
}

// The config.json fields of Hugging Face's Llama-style decoders (LlamaConfig and the families
// that copied it: Mistral, Qwen2, Qwen3, Gemma, OLMo 2, Phi-3): sizes, n_ctx (2048), rms_norm_eps
// (1e-6), hidden_act (silu), rope_theta (10000), tie_word_embeddings (false). A family appends
// its own fields and may replace a default.
std::vector<ConfigField> hf_decoder_config();
// Replaces the default (and who saves it) of a field already in the list.
void set_field_default(std::vector<ConfigField>& fields, Field f, nlohmann::json def);
void set_field_default(std::vector<ConfigField>& fields, Field f, nlohmann::json def, Save save);

// A boolean config.json setting the forward pass cannot run: refused with `why`.
struct RefusedSetting {
  const char* key;
  bool refused_value;
  const char* why;
};

// GGUF metadata: a family's own key (after "<arch>.", llama.cpp's name: "attention.sliding_window")
// and the field it sets. The keys every family shares (sizes, norm epsilon, RoPE base and
// dimensions, rope.scaling) are read for all of them (config_from_gguf).
struct GgufField {
  Field field;     // a field of the family's config table
  const char* key;
  nlohmann::json def = nullptr;  // when the key is absent; null: the config table's default
};
// A GGUF tensor whose presence marks a variant the forward pass cannot run: refused with `why`.
struct RefusedTensor {
  const char* name;
  const char* why;
};

// What the family fixes (config.json cannot change it), and the forward pass reads through
// ModelConfig. Biases here are the family's when no config field sets them.
struct ArchStructure {
  NormKind norm = NormKind::kLayerNorm;
  PosKind pos = PosKind::kLearned;
  bool gated_mlp = false;
  bool parallel_attn_mlp = false;
  bool qkv_bias = false, o_bias = false, mlp_bias = false;
  bool pre_norm = true, post_norm = false;  // ModelConfig::pre_norm / post_norm
  QkNorm qk_norm = QkNorm::kNone;
  bool embed_scaled = false;
};

struct ArchSpec {
  std::string model_type;  // config.json "model_type", and ModelConfig::model_type
  std::string hf_class;    // config.json "architectures": ["LlamaForCausalLM"]
  std::string hf_prefix;   // older checkpoints omit it ("transformer." for GPT-2's "h.0...")
  std::string gguf_arch;   // GGUF general.architecture; empty: not loadable from GGUF
  ArchStructure structure;
  std::vector<ConfigField> config;     // in reading order
  std::vector<RefusedSetting> refused;
  std::vector<GgufField> gguf_config;    // the family's own GGUF keys (gguf_arch set)
  std::vector<RefusedTensor> gguf_refused;
  // GGUF stores no query_pre_attn_scalar; llama.cpp derives it: d_model / n_heads for the one model
  // it recognises by this layer count (Gemma's 27B), d_head otherwise. 0: the family has none.
  int64_t gguf_wide_scalar_layers = 0;
  // In file order: model-wide tensors, then the per-layer block, then model-wide ones again.
  std::vector<TensorSpec> tensors;
  // Config values `zoo random` writes where they differ from `def` (kept so random models stay
  // byte-identical across versions).
  nlohmann::json random_overrides = nlohmann::json::object();
};

// The registry: every family file under core/model/arch/ (arch_*.cpp excepted), in name order.
const std::vector<const ArchSpec*>& arch_registry();
const ArchSpec* find_arch(const std::string& model_type);        // nullptr when unknown
const ArchSpec* find_arch_gguf(const std::string& gguf_arch);    // nullptr when unknown
// "gpt2, gpt_neox, llama, mistral, qwen2" (last_sep before the last one); gguf: GGUF ones only.
std::string arch_names(const std::string& last_sep = ", ", bool gguf = false);

// --- Rows the Llama-style families share (Hugging Face's "model.layers.{L}.self_attn.q_proj"
// and llama.cpp's "blk.{L}.attn_q" names) ---
// q, k, v weights, then their biases (present when `bias` says); gguf_qk: the GGUF layout of the
// q and k rows (kMetaRope for llama's); gguf_bias: whether the biases have GGUF names.
std::vector<TensorSpec> hf_qkv_rows(When bias, Conv gguf_qk = Conv::kNone, bool gguf_bias = true);
std::vector<TensorSpec> hf_o_rows(When bias, bool gguf_bias = true);  // o_proj weight, bias
std::vector<TensorSpec> hf_gated_mlp_rows();  // gate_proj, up_proj, down_proj weights
// The parts one after another.
std::vector<TensorSpec> table_rows(std::initializer_list<std::vector<TensorSpec>> parts);

// --- Table helpers (core/model/arch/arch_tensors.cpp) ---
bool is_layer_slot(Slot s);
// "model.layers.{L}.x" with layer 3 -> "model.layers.3.x".
std::string tensor_name(const char* pattern, int64_t layer);
bool tensor_present(When w, const ModelConfig& c);
// Calls fn(tensor, layer) in file order (layer -1 for model-wide tensors).
void for_each_tensor(const ArchSpec& a, int64_t n_layers,
                     const std::function<void(const TensorSpec&, int64_t)>& fn);
// First row and row count of a part within its canonical slot.
std::pair<int64_t, int64_t> part_rows(Slot s, Part p, const ModelConfig& c);
std::vector<int64_t> canonical_shape(Slot s, Part p, const ModelConfig& c);
std::vector<int64_t> stored_shape(Conv conv, std::vector<int64_t> canonical);
at::Tensor to_canonical(const at::Tensor& stored, Conv conv, Part p, const ModelConfig& c);
at::Tensor to_stored(const at::Tensor& canonical, Conv conv, Part p, const ModelConfig& c);
enum class SlotKind { kMatrix, kNormWeight, kBias };  // kBias includes norm biases
SlotKind slot_kind(Slot s);
at::Tensor& slot_ref(ModelWeights& w, Slot s, int64_t layer);
const at::Tensor& slot_ref(const ModelWeights& w, Slot s, int64_t layer);

// --- Config fields as config.json values (core/model/arch/arch_config.cpp) ---
// The value of a field in cfg, as config.json holds it.
nlohmann::json field_value(Field f, const ModelConfig& c);
// The config.json object the saver writes (model_type, architectures, fields; no token ids).
nlohmann::json hf_config_fields(const ArchSpec& a, const ModelConfig& c);
// The config.json object `zoo random` writes: the sizes given, the table's defaults, the
// family's random_overrides.
struct ArchSizes {
  int64_t n_layers, d_model, n_heads, n_kv_heads, d_mlp, d_vocab, n_ctx;
  int64_t d_head = 0;  // 0: d_model / n_heads
};
nlohmann::json random_hf_config(const ArchSpec& a, const ArchSizes& s);

}  // namespace ms
