// Model: a loaded transformer (config, weights, tokenizer, hook points) and its hooked forward
// pass with an optional KV cache. One forward implementation serves every architecture.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/attention/attention_observer.h"
#include "core/model/model_config.h"
#include "core/base/result.h"
#include "core/tokenizer/tokenizer.h"
#include "hooks/hook_registry.h"

namespace ms {

// Weights in one canonical layout (nn.Linear orientation: [out, in]; possibly a transposed view,
// and possibly sharing a weight file's copy-on-write mapping). Undefined tensors mean "absent"
// (no bias; no learned positions).
struct LayerWeights {
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b;
  at::Tensor w_qkv, b_qkv;  // [q_dim + 2 * kv_dim, d_model]: all q heads, then k heads, then v
  at::Tensor w_o, b_o;      // [d_model, q_dim]
  at::Tensor w_in, b_in;    // [d_mlp, d_model], gated: [2 * d_mlp, d_model] (gate rows, then up)
  at::Tensor w_out, b_out;  // [d_model, d_mlp]
  at::Tensor q_norm_w, k_norm_w;      // [d_head] per head, or [q_dim] / [kv_dim] over all heads
  at::Tensor ln1_post_w, ln2_post_w;  // [d_model]: RMSNorm of the attention / MLP output
};

struct ModelWeights {
  at::Tensor w_e;    // [d_vocab, d_model]
  at::Tensor w_pos;  // [n_ctx, d_model] (learned positions only)
  std::vector<LayerWeights> layers;
  at::Tensor ln_f_w, ln_f_b;
  at::Tensor w_u;    // [d_vocab, d_model]; the same tensor as w_e when tied
  at::Tensor b_u;    // [d_vocab] or undefined
  // Every distinct tensor, with its canonical name ("blocks.0.w_qkv"), for counting and training.
  std::vector<std::pair<std::string, at::Tensor>> named() const;
};

// Keys and values of past positions, one pair of buffers per layer, preallocated.
struct KVCache {
  std::vector<at::Tensor> k, v;  // [batch, n_kv_heads, capacity, d_head]
  int64_t length = 0;            // positions filled
  int64_t capacity = 0;
  int64_t batch = 0;
};

// How attention is computed. kAuto: the fused kernel (core/attention/fused_attention.h: no T x T
// scores, an online softmax over key tiles, a decode path for one query) wherever nothing needs
// the probabilities: no live hook_attn_scores / hook_pattern, no backward hooks or gradient
// through attention, no attention observer that reads or edits the pattern (observers that only
// want statistics get them from the kernel), CPU. The materialising query-block path otherwise.
// kFused is the same choice (kept for callers that name it); kMaterialise: always the
// materialising path (the reference; benchmarks). Until ms::parallel_for, kAuto took the fused
// kernel only for statistics: our loops then ran on one thread, so at 2 threads the fused kernel
// lost to the materialising path's multithreaded GEMMs (bench_forward).
enum class AttentionKernel { kAuto, kMaterialise, kFused };

struct ForwardOptions {
  HookRegistry* hooks = nullptr;  // resolved once for this call
  KVCache* cache = nullptr;       // when set: tokens are new positions after cache->length
  bool last_logits_only = false;  // compute the unembedding for the last position only
  int64_t stop_at_layer = -1;     // >= 0: return the residual stream before this layer
  // Query-block size for long prompts; 0 chooses one that bounds attention memory.
  int64_t attn_block = 0;
  // Sees (and may edit) every block of attention probabilities; see core/attention_observer.h.
  AttentionObserver* attention = nullptr;
  // Positions per MLP chunk when no MLP hook point is live (bounds the d_mlp-wide activations
  // at long context); 0 chooses.
  int64_t mlp_chunk = 0;
  AttentionKernel attention_kernel = AttentionKernel::kAuto;
  // Keys per tile of the fused kernel (its query tile is attn_block when set); 0 chooses.
  int64_t attn_key_tile = 0;
};

struct LoadOptions {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:1"
  std::string dtype = "f32";   // "f32", "f16", "bf16"
};

struct GenerateOptions {
  int64_t max_new = 32;
  bool greedy = true;
  double temperature = 1.0;
  int64_t top_k = 0;      // 0: whole vocabulary
  uint64_t seed = 0;
  bool stop_at_eos = true;
  HookRegistry* hooks = nullptr;
  std::function<bool(int32_t)> on_token;  // return false to stop
};

class Model {
 public:
  // Loads a Hugging Face folder (config.json + safetensors, sharded or not, + tokenizer files)
  // or a .gguf file. Pickle checkpoints are refused. Errors name the file and the problem.
  static Result<std::unique_ptr<Model>> load(const std::string& path, const LoadOptions& opts = {});
  // A model from weights made in memory (zoo, tests); weights must match cfg.
  static Result<std::unique_ptr<Model>> from_weights(ModelConfig cfg, ModelWeights weights,
                                                     std::unique_ptr<Tokenizer> tokenizer = nullptr);
  ~Model();

  const ModelConfig& config() const { return m_cfg; }
  const ModelWeights& weights() const { return m_w; }
  ModelWeights& weights() { return m_w; }
  const HookPointTable& hook_points() const { return m_points; }
  const Tokenizer* tokenizer() const { return m_tokenizer.get(); }
  const std::string& source() const { return m_source; }  // folder or file it came from
  std::string weights_description() const { return m_weights_desc; }
  int64_t parameter_count() const;
  c10::ScalarType dtype() const;
  c10::Device device() const;

  // tokens: [batch, pos] int64 (or [pos]). Returns logits [batch, pos, d_vocab] in float32
  // (the last position only with last_logits_only; the residual stream with stop_at_layer).
  // Throws InputError for token ids out of range or a sequence longer than n_ctx.
  at::Tensor forward(const at::Tensor& tokens, const ForwardOptions& opts = {}) const;
  // Convenience: ids -> [1, pos] tensor on the model's device.
  at::Tensor tokens_tensor(const std::vector<int32_t>& ids) const;

  KVCache make_cache(int64_t batch, int64_t capacity) const;
  // Greedy or sampled decoding with the KV cache; returns the new ids only.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts) const;

  // Ids of the hook points the forward pass calls, per layer (-1 when the architecture has none).
  struct LayerHooks {
    int resid_pre, ln1_scale, ln1_normalized, q, k, v, rot_q, rot_k, attn_scores, pattern, z,
        result, attn_out, resid_mid, ln2_scale, ln2_normalized, mlp_pre, mlp_pre_linear,
        mlp_post, mlp_out, resid_post;
    int q_norm_scale, q_norm_normalized, k_norm_scale, k_norm_normalized, ln1_post_scale,
        ln1_post_normalized, ln2_post_scale, ln2_post_normalized;
  };
  struct Hooks {
    int embed, pos_embed;
    std::vector<LayerHooks> layers;
    int lnf_scale, lnf_normalized;
  };
  const Hooks& hook_ids() const { return m_hooks; }

 private:
  Model() = default;
  void build_hook_points();
  void prepare_rope();

  ModelConfig m_cfg;
  ModelWeights m_w;
  std::unique_ptr<Tokenizer> m_tokenizer;
  HookPointTable m_points;
  Hooks m_hooks{};
  std::string m_source;
  std::string m_weights_desc;
  at::Tensor m_inv_freq;        // [rotary_dim / 2] float64 on CPU
  at::Tensor m_inv_freq_local;  // the local layers' (Gemma 3), else undefined

  friend class ForwardPass;
  friend struct ModelLoader;
};

// Parses "cpu", "cuda", "cuda:N" and "f32" / "f16" / "bf16"; kUsage errors otherwise.
Result<c10::Device> parse_device(const std::string& s);
Result<c10::ScalarType> parse_dtype(const std::string& s);

}  // namespace ms
