// ModelConfig: the architecture-independent description of a transformer that the forward pass
// runs (TransformerLens' config names), parsed from Hugging Face config.json or GGUF metadata.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/result.h"

namespace ms {

class GgufFile;

enum class NormKind { kLayerNorm, kRmsNorm };
enum class ActKind { kGeluNew, kGelu, kSilu, kRelu };
enum class PosKind { kLearned, kRotary, kNone };
// RMSNorm of queries and keys after their projections (before RoPE): per head over d_head (Qwen3,
// Gemma 3) or over all heads together before the split into heads (OLMo 2).
enum class QkNorm { kNone, kPerHead, kAllHeads };

struct ModelConfig {
  std::string model_type;  // an ArchSpec's (core/model/arch/): "gpt2", "llama", ...
  int64_t n_layers = 0;
  int64_t d_model = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // == n_heads without grouped-query attention
  int64_t d_head = 0;
  int64_t d_mlp = 0;       // 0: attention-only model
  int64_t d_vocab = 0;
  int64_t n_ctx = 0;       // maximum positions
  NormKind norm = NormKind::kLayerNorm;
  double norm_eps = 1e-5;
  ActKind act = ActKind::kGeluNew;
  PosKind pos = PosKind::kLearned;
  int64_t rotary_dim = 0;  // rotated dims per head (partial rotary: < d_head)
  double rope_theta = 10000.0;
  // rope_scaling: "linear" (positions divided by factor) or "llama3" (frequency bands)
  std::string rope_scaling_type;
  double rope_scaling_factor = 1.0;
  double rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;
  int64_t rope_original_max_pos = 8192;
  bool parallel_attn_mlp = false;  // GPT-NeoX use_parallel_residual
  bool gated_mlp = false;          // SwiGLU: down(act(gate(x)) * up(x))
  bool qkv_bias = false;
  bool o_bias = false;
  bool mlp_bias = false;
  bool tie_embeddings = false;
  int64_t sliding_window = 0;  // 0: none; else query i sees key j iff i - j < sliding_window
  // Which layers the window applies to (Gemma 2/3 alternate local and global layers); empty: all.
  std::vector<char> layer_local;
  // Gemma 3: RoPE base of the local layers (no rope_scaling there); 0: the same RoPE everywhere.
  double rope_local_theta = 0;
  bool pre_norm = true;     // ln1 / ln2 before attention and MLP (OLMo 2 has none)
  bool post_norm = false;   // ln1_post / ln2_post on the branch outputs (Gemma 2/3, OLMo 2)
  QkNorm qk_norm = QkNorm::kNone;
  bool embed_scaled = false;       // Gemma: embeddings times sqrt(d_model) (in the compute dtype)
  double query_pre_attn_scalar = 0;  // > 0: scores scaled by its -1/2 power instead of d_head's
  double attn_softcap = 0;         // > 0: scores = cap * tanh(scores / cap) before the mask
  double final_softcap = 0;        // > 0: the same on the logits
  int32_t bos_token_id = -1;
  int32_t eos_token_id = -1;

  int64_t q_dim() const { return n_heads * d_head; }
  int64_t kv_dim() const { return n_kv_heads * d_head; }
  bool attn_only() const { return d_mlp == 0; }
  // The sliding window of one layer (0: causal only).
  int64_t window(int64_t layer) const {
    if (layer_local.empty()) return sliding_window;
    return layer >= 0 && layer < static_cast<int64_t>(layer_local.size()) && layer_local[static_cast<size_t>(layer)]
               ? sliding_window : 0;
  }
  bool has_local_rope() const { return rope_local_theta > 0; }
  double attn_scale() const;  // what the scores are multiplied by
  // The config as JSON (TransformerLens names), for `info --json` and the database.
  std::string to_json() const;
};

const char* norm_name(NormKind k);
const char* act_name(ActKind k);
const char* pos_name(PosKind k);

// Parses a Hugging Face config.json. Unknown model_type, missing or inconsistent fields give
// kBadInput errors naming the file and the field.
Result<ModelConfig> parse_hf_config(const std::string& path);
// From a parsed config.json text (path used in messages).
Result<ModelConfig> parse_hf_config_text(const std::string& text, const std::string& path);
// From GGUF metadata (architectures with GGUF names in their table: llama).
Result<ModelConfig> config_from_gguf(const GgufFile& gguf);
// Checks the invariants every config must satisfy (positive sizes, heads divide, ...).
Status validate_config(const ModelConfig& cfg, const std::string& where);

}  // namespace ms
