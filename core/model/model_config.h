// ModelConfig: the architecture-independent description of a transformer that the forward pass
// runs (TransformerLens' config names), parsed from Hugging Face config.json or GGUF metadata.
#pragma once

#include <cstdint>
#include <string>

#include "core/base/result.h"

namespace ms {

class GgufFile;

enum class NormKind { kLayerNorm, kRmsNorm };
enum class ActKind { kGeluNew, kGelu, kSilu, kRelu };
enum class PosKind { kLearned, kRotary, kNone };

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
  int32_t bos_token_id = -1;
  int32_t eos_token_id = -1;

  int64_t q_dim() const { return n_heads * d_head; }
  int64_t kv_dim() const { return n_kv_heads * d_head; }
  bool attn_only() const { return d_mlp == 0; }
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
