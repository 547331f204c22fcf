// The hooked forward pass shared by every architecture: embeddings, pre-norm blocks
// (sequential or parallel attention + MLP), query-blocked causal attention with GQA, RoPE and a
// KV cache, and the unembedding. Hook points are called by id; unused ones cost nothing.
#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "core/attention/fused_attention.h"
#include "core/base/gelu.h"
#include "core/base/malloc_reuse.h"
#include "core/base/gemv.h"
#include "core/attention/visibility.h"
#include "core/model/model.h"
#include "core/model/norm.h"
#include "core/model/rope.h"

namespace ms {

namespace {
// cap * tanh(x / cap): in place when no gradient needs x (the logits of a 256k vocabulary are 1 GiB
// at 1,024 tokens; out of place, two more such temporaries), else out of place for autograd.
at::Tensor soft_cap(const at::Tensor& x, double cap) {
  if (c10::GradMode::is_enabled() && x.requires_grad()) return at::tanh(x / cap) * cap;
  return x.div_(cap).tanh_().mul_(cap);
}

// x (..., in) times w^T (+ b), as at::linear. One row (a decode step) is a matrix-vector product:
// GEMV reads each weight once, where GEMM at M = 1 packs the weight panels first (a decode step
// was 4x its memory floor; issue 18 item 5), and mechscope's own GEMV (core/base/gemv.h) reads
// them faster than OpenBLAS' sgemv. Autograd (a gradient through the weights or x) keeps at::linear.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (x.numel() != x.size(-1) || w.dim() != 2 || !x.device().is_cpu() || x.scalar_type() != at::kFloat ||
      w.scalar_type() != at::kFloat || w.stride(1) != 1 || (b.defined() && b.scalar_type() != at::kFloat))
    return at::linear(x, w, b);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = w.size(0);
  if (c10::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad()))) {
    at::Tensor v = x.reshape({x.size(-1)});
    return (b.defined() ? at::addmv(b, w, v) : at::mv(w, v)).view(shape);
  }
  const at::Tensor v = x.reshape({x.size(-1)}).contiguous();
  const at::Tensor bc = b.defined() ? b.contiguous() : b;
  RECORD_USER_SCOPE("mechscope::gemv");
  at::Tensor y = at::empty(shape, x.options());
  ms::gemv(w.data_ptr<float>(), w.stride(0), v.data_ptr<float>(), bc.defined() ? bc.data_ptr<float>() : nullptr,
           y.data_ptr<float>(), w.size(0), w.size(1));
  return y;
}
}  // namespace

class ForwardPass {
 public:
  ForwardPass(const Model& m, const ForwardOptions& o)
      : m_model(m), m_cfg(m.m_cfg), m_w(m.m_w), m_opts(o), m_hooks(o.hooks, m.m_points) {}

  at::Tensor run(const at::Tensor& tokens_in);

 private:
  at::Tensor norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int scale_id,
                  int normalized_id) const;
  at::Tensor attention(size_t layer, const at::Tensor& x, const Model::LayerHooks& ids);
  bool fused_attention_ok(size_t layer, const Model::LayerHooks& ids, const at::Tensor& q,
                          const at::Tensor& k, const at::Tensor& v, FusedAttentionStats& stats) const;
  at::Tensor attention_out(size_t layer, at::Tensor z, const Model::LayerHooks& ids);
  at::Tensor mlp(size_t layer, const at::Tensor& x, const Model::LayerHooks& ids) const;
  at::Tensor activation(const at::Tensor& x) const;
  at::Tensor rotate(const at::Tensor& x, size_t layer) const;  // [B, T, heads, d_head]
  at::Tensor qk_norm(const at::Tensor& x, const at::Tensor& w, int scale_id, int normalized_id) const;
  at::Tensor post_norm(const at::Tensor& x, const at::Tensor& w, int scale_id, int normalized_id) const;
  int64_t block_size(int64_t keys) const;

  const Model& m_model;
  const ModelConfig& m_cfg;
  const ModelWeights& m_w;
  const ForwardOptions& m_opts;
  ActiveHooks m_hooks;
  int64_t m_batch = 0, m_len = 0, m_past = 0;
  at::Tensor m_cos, m_sin;  // [1, T, 1, rotary_dim / 2] in the compute dtype
  at::Tensor m_cos_local, m_sin_local;  // the local layers' (Gemma 3), else undefined
};

at::Tensor ForwardPass::norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                             int scale_id, int normalized_id) const {
  if (!m_hooks.live(scale_id) && !m_hooks.live(normalized_id)) return apply_norm(m_cfg, x, w, b);
  NormTaps taps{[&](const at::Tensor& t) { return hp(m_hooks, scale_id, t); },
                [&](const at::Tensor& t) { return hp(m_hooks, normalized_id, t); }};
  return apply_norm(m_cfg, x, w, b, &taps);
}

at::Tensor ForwardPass::activation(const at::Tensor& x) const {
  switch (m_cfg.act) {
    case ActKind::kGeluNew:
      // mechscope's kernel (core/base/gelu.h) where no gradient flows through it; else ATen's.
      if (x.device().is_cpu() && x.scalar_type() == at::kFloat && x.is_contiguous() &&
          !(c10::GradMode::is_enabled() && x.requires_grad())) {
        RECORD_USER_SCOPE("mechscope::gelu_tanh");
        at::Tensor y = at::empty_like(x);
        ms::gelu_tanh(x.data_ptr<float>(), y.data_ptr<float>(), x.numel());
        return y;
      }
      return at::gelu(x, "tanh");
    case ActKind::kGelu: return at::gelu(x);
    case ActKind::kSilu: return at::silu(x);
    case ActKind::kRelu: return at::relu(x);
  }
  return x;
}

at::Tensor ForwardPass::rotate(const at::Tensor& x, size_t layer) const {
  // Hugging Face rotate_half: pairs (i, i + rd/2) of the first rotary_dim dims of each head.
  const int64_t rd = m_cfg.rotary_dim, half = rd / 2;
  const bool local = m_cos_local.defined() && m_cfg.window(static_cast<int64_t>(layer)) > 0;
  const at::Tensor& cos = local ? m_cos_local : m_cos;
  const at::Tensor& sin = local ? m_sin_local : m_sin;
  at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  at::Tensor r1 = x1 * cos - x2 * sin;
  at::Tensor r2 = x2 * cos + x1 * sin;
  if (rd == x.size(-1)) return at::cat({r1, r2}, -1);
  return at::cat({r1, r2, x.narrow(-1, rd, x.size(-1) - rd)}, -1);
}

// RMSNorm of queries or keys (Qwen3, Gemma 3: per head over d_head; OLMo 2: over all heads
// together), with its attn.q_norm / attn.k_norm hook points. x: (B, T, heads, d_head).
at::Tensor ForwardPass::qk_norm(const at::Tensor& x, const at::Tensor& w, int scale_id, int normalized_id) const {
  if (m_cfg.qk_norm == QkNorm::kNone) return x;
  const bool all = m_cfg.qk_norm == QkNorm::kAllHeads;
  at::Tensor in = all ? x.reshape({x.size(0), x.size(1), x.size(2) * x.size(3)}) : x;
  at::Tensor out = norm(in, w, at::Tensor(), scale_id, normalized_id);
  return all ? out.view(x.sizes()) : out;
}

// The norm after a branch (Gemma 2/3's post_attention_layernorm / post_feedforward_layernorm,
// OLMo 2's), before hook_attn_out / hook_mlp_out as in TransformerLens' ln1_post / ln2_post.
at::Tensor ForwardPass::post_norm(const at::Tensor& x, const at::Tensor& w, int scale_id, int normalized_id) const {
  return m_cfg.post_norm ? norm(x, w, at::Tensor(), scale_id, normalized_id) : x;
}

int64_t ForwardPass::block_size(int64_t keys) const {
  if (m_opts.attn_block > 0) return std::min(m_opts.attn_block, m_len);
  // Query blocks let causal attention skip the keys a block cannot see (about 3/8 of the work
  // with four blocks) and bound the float32 scores of one block to about 128 MB at long context.
  const int64_t budget = int64_t(128) << 20;
  int64_t per_query = m_batch * m_cfg.n_heads * keys * 4;
  int64_t by_memory = std::max<int64_t>(1, budget / std::max<int64_t>(1, per_query));
  int64_t causal = m_len >= 256 ? (m_len + 3) / 4 : m_len;
  return std::max<int64_t>(1, std::min({m_len, by_memory, causal}));
}

at::Tensor ForwardPass::attention(size_t layer, const at::Tensor& x, const Model::LayerHooks& ids) {
  const LayerWeights& lw = m_w.layers[layer];
  const int64_t B = m_batch, T = m_len, P = m_past, H = m_cfg.n_heads, KV = m_cfg.n_kv_heads,
                dh = m_cfg.d_head, G = H / KV;
  at::Tensor qkv = linear(x, lw.w_qkv, lw.b_qkv);  // (B, T, qd + 2 kvd)
  at::Tensor q = hp(m_hooks, ids.q, qkv.narrow(2, 0, H * dh).view({B, T, H, dh}));
  at::Tensor k = hp(m_hooks, ids.k, qkv.narrow(2, H * dh, KV * dh).view({B, T, KV, dh}));
  at::Tensor v = hp(m_hooks, ids.v, qkv.narrow(2, (H + KV) * dh, KV * dh).view({B, T, KV, dh}));
  q = qk_norm(q, lw.q_norm_w, ids.q_norm_scale, ids.q_norm_normalized);
  k = qk_norm(k, lw.k_norm_w, ids.k_norm_scale, ids.k_norm_normalized);
  if (m_cfg.pos == PosKind::kRotary) {
    q = hp(m_hooks, ids.rot_q, rotate(q, layer));
    k = hp(m_hooks, ids.rot_k, rotate(k, layer));
  }
  const int64_t window = m_cfg.window(static_cast<int64_t>(layer));
  const double scale = m_cfg.attn_scale(), cap = m_cfg.attn_softcap;
  at::Tensor kh = k.transpose(1, 2), vh = v.transpose(1, 2);  // (B, KV, T, dh)
  if (m_opts.cache) {
    m_opts.cache->k[layer].narrow(2, P, T).copy_(kh);
    m_opts.cache->v[layer].narrow(2, P, T).copy_(vh);
    kh = m_opts.cache->k[layer].narrow(2, 0, P + T);
    vh = m_opts.cache->v[layer].narrow(2, 0, P + T);
  }
  const int64_t S = P + T;
  FusedAttentionStats stats;
  if (fused_attention_ok(layer, ids, q, kh, vh, stats)) {
    FusedAttentionOptions fo;
    fo.stats = &stats;
    fo.past = P;
    fo.sliding_window = window;
    fo.scale = scale;
    fo.softcap = cap;
    fo.q_tile = m_opts.attn_block;
    fo.k_tile = m_opts.attn_key_tile;
    RECORD_USER_SCOPE("mechscope::fused_attention");  // a profiler's name for our kernel
    return attention_out(layer, fused_attention(q, kh, vh, fo), ids);  // (B, T, H, dh)
  }
  // Queries grouped by the KV head they share: (B, KV, G, T, dh), scaled once.
  at::Tensor qg = (q.transpose(1, 2) * scale).view({B, KV, G, T, dh});
  const bool full = m_hooks.live(ids.attn_scores) || m_hooks.live(ids.pattern);
  const int64_t blk = full ? T : block_size(S);
  at::Tensor z = at::empty({B, KV, G, T, dh}, q.options());  // (B, KV, G, T, dh)
  for (int64_t t0 = 0; t0 < T; t0 += blk) {
    const int64_t tb = std::min(blk, T - t0);
    // Keys this block can see: causal up to its last query, and the sliding window.
    const int64_t k_end = P + t0 + tb;
    const int64_t k_begin = full ? 0 : first_visible_key(P + t0, window);
    const int64_t nk = k_end - k_begin;
    at::Tensor qb = qg.narrow(3, t0, tb).reshape({B, KV, G * tb, dh});
    at::Tensor kb = kh.narrow(2, k_begin, nk), vb = vh.narrow(2, k_begin, nk);
    at::Tensor scores = at::matmul(qb, kb.transpose(-1, -2)).to(at::kFloat);  // (B, KV, G*tb, nk)
    if (cap > 0) scores = soft_cap(scores, cap);  // Gemma 2: soft-capping before the mask
    // Additive mask: -inf where query P+t0+i may not see key k_begin+j (future, or outside the
    // sliding window), else 0; one pass over the scores.
    at::Tensor masked = visibility_mask(P + t0, tb, k_begin, nk, window, q.device()).logical_not_();
    at::Tensor bias = at::zeros({tb, nk}, scores.options()).masked_fill_(masked, -std::numeric_limits<float>::infinity());
    scores = scores.view({B, KV, G, tb, nk}).add_(bias);
    at::Tensor pattern;
    if (full) {
      scores = hp(m_hooks, ids.attn_scores, scores.view({B, H, tb, nk})).view({B, KV, G, tb, nk});
      pattern = at::softmax(scores, -1);
      pattern = hp(m_hooks, ids.pattern, pattern.view({B, H, tb, nk})).view({B, KV, G, tb, nk});
    } else {
      pattern = at::softmax(scores, -1);
    }
    if (m_opts.attention && m_opts.attention->wants_layer(static_cast<int64_t>(layer))) {
      AttentionBlock ab{static_cast<int64_t>(layer), P + t0, tb, k_begin, nk, window,
                        pattern.view({B, H, tb, nk})};
      m_opts.attention->on_block(ab);
      if (!ab.pattern.is_same(pattern) && ab.pattern.data_ptr() != pattern.data_ptr())
        pattern = ab.pattern.reshape({B, KV, G, tb, nk});
    }
    at::Tensor zb = at::matmul(pattern.to(q.scalar_type()).reshape({B, KV, G * tb, nk}), vb);
    z.narrow(3, t0, tb).copy_(zb.view({B, KV, G, tb, dh}));
  }
  return attention_out(layer, z.view({B, H, T, dh}).transpose(1, 2), ids);
}

// The fused kernel serves when nothing reads or edits the probabilities (an observer may ask for
// statistics it computes) and no gradient flows through attention (it has no backward); kAuto
// and kFused alike (model.h AttentionKernel).
bool ForwardPass::fused_attention_ok(size_t layer, const Model::LayerHooks& ids, const at::Tensor& q,
                                     const at::Tensor& k, const at::Tensor& v, FusedAttentionStats& stats) const {
  if (m_opts.attention_kernel == AttentionKernel::kMaterialise || !q.device().is_cpu()) return false;
  if (c10::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad())) return false;
  if (m_hooks.live(ids.attn_scores) || m_hooks.live(ids.pattern) || m_hooks.any_backward()) return false;
  const int64_t l = static_cast<int64_t>(layer);
  if (!m_opts.attention || !m_opts.attention->wants_layer(l)) return true;
  return m_opts.attention->fused_stats(l, m_past, m_len, m_cfg.window(l), stats);
}

// hook_z and the output projection (through hook_result when it is live). z: (B, T, H, dh).
at::Tensor ForwardPass::attention_out(size_t layer, at::Tensor z, const Model::LayerHooks& ids) {
  const LayerWeights& lw = m_w.layers[layer];
  const int64_t B = m_batch, T = m_len, H = m_cfg.n_heads, dh = m_cfg.d_head;
  z = hp(m_hooks, ids.z, z);  // (B, T, H, dh)
  if (m_hooks.live(ids.result)) {
    at::Tensor wo = lw.w_o.reshape({m_cfg.d_model, H, dh});
    at::Tensor result = hp(m_hooks, ids.result, at::einsum("bthk,dhk->bthd", {z, wo}));
    at::Tensor out = result.sum(2);
    return lw.b_o.defined() ? out + lw.b_o : out;
  }
  return linear(z.reshape({B, T, H * dh}), lw.w_o, lw.b_o);
}

at::Tensor ForwardPass::mlp(size_t layer, const at::Tensor& x, const Model::LayerHooks& ids) const {
  const LayerWeights& lw = m_w.layers[layer];
  const bool hooked = m_hooks.live(ids.mlp_pre) || m_hooks.live(ids.mlp_pre_linear) || m_hooks.live(ids.mlp_post);
  const int64_t T = x.size(1), width = m_cfg.gated_mlp ? 2 * m_cfg.d_mlp : m_cfg.d_mlp;
  int64_t chunk = m_opts.mlp_chunk;
  if (chunk <= 0) {  // bound the d_mlp-wide activations to about 256 MB
    const int64_t per_pos = std::max<int64_t>(1, x.size(0) * width * 8);
    chunk = std::max<int64_t>(1, (int64_t(256) << 20) / per_pos);
  }
  if (!hooked && T > chunk) {
    std::vector<at::Tensor> parts;
    for (int64_t t0 = 0; t0 < T; t0 += chunk)
      parts.push_back(mlp(layer, x.narrow(1, t0, std::min(chunk, T - t0)), ids));
    return at::cat(parts, 1);
  }
  at::Tensor pre = linear(x, lw.w_in, lw.b_in);
  at::Tensor post;
  if (m_cfg.gated_mlp) {
    at::Tensor gate = hp(m_hooks, ids.mlp_pre, pre.narrow(-1, 0, m_cfg.d_mlp));
    at::Tensor up = hp(m_hooks, ids.mlp_pre_linear, pre.narrow(-1, m_cfg.d_mlp, m_cfg.d_mlp));
    post = activation(gate) * up;
  } else {
    post = activation(hp(m_hooks, ids.mlp_pre, pre));
  }
  post = hp(m_hooks, ids.mlp_post, post);
  return linear(post, lw.w_out, lw.b_out);
}

at::Tensor ForwardPass::run(const at::Tensor& tokens_in) {
  at::Tensor tokens = tokens_in.dim() == 1 ? tokens_in.unsqueeze(0) : tokens_in;
  if (tokens.dim() != 2) fail_usage("tokens must be [batch, pos], got rank " + std::to_string(tokens_in.dim()));
  tokens = tokens.to(m_model.device(), at::kLong);
  m_batch = tokens.size(0);
  m_len = tokens.size(1);
  if (m_len == 0) fail_usage("no tokens to run");
  KVCache* cache = m_opts.cache;
  m_past = cache ? cache->length : 0;
  if (cache) {
    if (cache->batch != m_batch)
      fail_usage("KV cache was made for batch " + std::to_string(cache->batch) + ", got " + std::to_string(m_batch));
    if (m_past + m_len > cache->capacity)
      fail_usage("KV cache full: " + std::to_string(m_past) + " + " + std::to_string(m_len) +
                 " positions exceed its capacity " + std::to_string(cache->capacity));
    if (m_opts.stop_at_layer >= 0) fail_usage("stop_at_layer cannot be combined with a KV cache");
  }
  {
    int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
    if (lo < 0 || hi >= m_cfg.d_vocab)
      fail_input("token id " + std::to_string(lo < 0 ? lo : hi) + " is out of range for a vocabulary of " +
                 std::to_string(m_cfg.d_vocab));
  }
  if (m_cfg.pos == PosKind::kLearned && m_past + m_len > m_cfg.n_ctx)
    fail_input("sequence of " + std::to_string(m_past + m_len) + " positions is longer than the model's " +
               std::to_string(m_cfg.n_ctx) + " learned positions");
  m_hooks.set_pos_offset(m_past);
  std::unique_ptr<c10::AutoGradMode> grad;
  if (m_hooks.any_backward()) grad = std::make_unique<c10::AutoGradMode>(true);

  const Model::Hooks& ids = m_model.m_hooks;
  at::Tensor embedded = at::embedding(m_w.w_e, tokens);  // (B, T, d)
  // Gemma: times sqrt(d_model) rounded to the compute dtype, as its normalizer tensor is.
  if (m_cfg.embed_scaled)
    embedded = embedded * at::scalar_tensor(std::sqrt(static_cast<double>(m_cfg.d_model)), embedded.options());
  at::Tensor resid = hp(m_hooks, ids.embed, embedded);
  if (m_cfg.pos == PosKind::kLearned) {
    at::Tensor pe = m_w.w_pos.narrow(0, m_past, m_len).unsqueeze(0).expand({m_batch, m_len, m_cfg.d_model});
    resid = resid + hp(m_hooks, ids.pos_embed, pe);
  } else if (m_cfg.pos == PosKind::kRotary) {
    at::Tensor pos = at::arange(m_past, m_past + m_len, at::TensorOptions().dtype(at::kDouble));
    at::Tensor ang = pos.unsqueeze(1) * m_model.m_inv_freq.unsqueeze(0);  // (T, rd/2), float64
    auto opts = at::TensorOptions().dtype(m_model.dtype()).device(m_model.device());
    m_cos = ang.cos().to(opts).view({1, m_len, 1, -1});
    m_sin = ang.sin().to(opts).view({1, m_len, 1, -1});
    if (m_model.m_inv_freq_local.defined()) {
      at::Tensor ang_local = pos.unsqueeze(1) * m_model.m_inv_freq_local.unsqueeze(0);
      m_cos_local = ang_local.cos().to(opts).view({1, m_len, 1, -1});
      m_sin_local = ang_local.sin().to(opts).view({1, m_len, 1, -1});
    }
  }
  const int64_t n_run = m_opts.stop_at_layer >= 0 ? std::min(m_opts.stop_at_layer, m_cfg.n_layers) : m_cfg.n_layers;
  for (int64_t l = 0; l < n_run; ++l) {
    const Model::LayerHooks& h = ids.layers[static_cast<size_t>(l)];
    const LayerWeights& lw = m_w.layers[static_cast<size_t>(l)];
    resid = hp(m_hooks, h.resid_pre, resid);
    const size_t ls = static_cast<size_t>(l);
    // Pre-norm (absent in OLMo 2), the branch, its post-norm (Gemma 2/3, OLMo 2), the hook.
    auto attn_branch = [&](const at::Tensor& in) {
      at::Tensor x = m_cfg.pre_norm ? norm(in, lw.ln1_w, lw.ln1_b, h.ln1_scale, h.ln1_normalized) : in;
      return hp(m_hooks, h.attn_out, post_norm(attention(ls, x, h), lw.ln1_post_w, h.ln1_post_scale, h.ln1_post_normalized));
    };
    auto mlp_branch = [&](const at::Tensor& in) {
      at::Tensor x = m_cfg.pre_norm ? norm(in, lw.ln2_w, lw.ln2_b, h.ln2_scale, h.ln2_normalized) : in;
      return hp(m_hooks, h.mlp_out, post_norm(mlp(ls, x, h), lw.ln2_post_w, h.ln2_post_scale, h.ln2_post_normalized));
    };
    at::Tensor attn_out = attn_branch(resid);
    if (m_cfg.attn_only()) {
      resid = hp(m_hooks, h.resid_post, resid + attn_out);
    } else if (m_cfg.parallel_attn_mlp) {
      at::Tensor mlp_out = mlp_branch(resid);
      resid = hp(m_hooks, h.resid_post, resid + attn_out + mlp_out);
    } else {
      at::Tensor mid = hp(m_hooks, h.resid_mid, resid + attn_out);
      at::Tensor mlp_out = mlp_branch(mid);
      resid = hp(m_hooks, h.resid_post, mid + mlp_out);
    }
  }
  if (cache) cache->length += m_len;
  if (m_opts.stop_at_layer >= 0) return resid;
  if (m_opts.last_logits_only) resid = resid.narrow(1, m_len - 1, 1);
  at::Tensor x = norm(resid, m_w.ln_f_w, m_w.ln_f_b, ids.lnf_scale, ids.lnf_normalized);
  at::Tensor logits = linear(x, m_w.w_u, m_w.b_u);
  if (m_cfg.final_softcap > 0) logits = soft_cap(logits, m_cfg.final_softcap);
  return logits.scalar_type() == at::kFloat ? logits : logits.to(at::kFloat);
}

at::Tensor Model::forward(const at::Tensor& tokens, const ForwardOptions& opts) const {
  ForwardPass pass(*this, opts);
  return pass.run(tokens);
}

at::Tensor Model::tokens_tensor(const std::vector<int32_t>& ids) const {
  std::vector<int64_t> v(ids.begin(), ids.end());
  return at::tensor(v, at::kLong).view({1, static_cast<int64_t>(v.size())}).to(device());
}

KVCache Model::make_cache(int64_t batch, int64_t capacity) const {
  KVCache c;
  c.batch = batch;
  c.capacity = capacity;
  auto opts = at::TensorOptions().dtype(dtype()).device(device());
  HugePagesScope huge;  // every decode step reads the cache: huge pages (core/base/malloc_reuse.h)
  for (int64_t l = 0; l < m_cfg.n_layers; ++l) {
    c.k.push_back(at::zeros({batch, m_cfg.n_kv_heads, capacity, m_cfg.d_head}, opts));
    c.v.push_back(at::zeros({batch, m_cfg.n_kv_heads, capacity, m_cfg.d_head}, opts));
  }
  return c;
}

void Model::prepare_rope() {
  if (m_cfg.pos != PosKind::kRotary) return;
  m_inv_freq = rope_inv_freq(m_cfg);
  if (m_cfg.has_local_rope()) {  // Gemma 3's local layers: their own base, no rope_scaling
    ModelConfig local = m_cfg;
    local.rope_theta = m_cfg.rope_local_theta;
    local.rope_scaling_type.clear();
    m_inv_freq_local = rope_inv_freq(local);
  }
}

void Model::build_hook_points() {
  m_points = HookPointTable();
  auto add = [&](const std::string& n) { return m_points.add(n); };
  m_hooks.embed = add("hook_embed");
  m_hooks.pos_embed = m_cfg.pos == PosKind::kLearned ? add("hook_pos_embed") : -1;
  m_hooks.layers.clear();
  const bool rotary = m_cfg.pos == PosKind::kRotary;
  for (int64_t l = 0; l < m_cfg.n_layers; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    Model::LayerHooks h{};
    const bool pre = m_cfg.pre_norm, post = m_cfg.post_norm, qkn = m_cfg.qk_norm != QkNorm::kNone;
    h.resid_pre = add(p + "hook_resid_pre");
    h.ln1_scale = pre ? add(p + "ln1.hook_scale") : -1;
    h.ln1_normalized = pre ? add(p + "ln1.hook_normalized") : -1;
    h.q = add(p + "attn.hook_q");
    h.k = add(p + "attn.hook_k");
    h.v = add(p + "attn.hook_v");
    h.q_norm_scale = qkn ? add(p + "attn.q_norm.hook_scale") : -1;
    h.q_norm_normalized = qkn ? add(p + "attn.q_norm.hook_normalized") : -1;
    h.k_norm_scale = qkn ? add(p + "attn.k_norm.hook_scale") : -1;
    h.k_norm_normalized = qkn ? add(p + "attn.k_norm.hook_normalized") : -1;
    h.rot_q = rotary ? add(p + "attn.hook_rot_q") : -1;
    h.rot_k = rotary ? add(p + "attn.hook_rot_k") : -1;
    h.attn_scores = add(p + "attn.hook_attn_scores");
    h.pattern = add(p + "attn.hook_pattern");
    h.z = add(p + "attn.hook_z");
    h.result = add(p + "attn.hook_result");
    h.ln1_post_scale = post ? add(p + "ln1_post.hook_scale") : -1;
    h.ln1_post_normalized = post ? add(p + "ln1_post.hook_normalized") : -1;
    h.attn_out = add(p + "hook_attn_out");
    const bool has_mlp = !m_cfg.attn_only();
    h.resid_mid = has_mlp && !m_cfg.parallel_attn_mlp ? add(p + "hook_resid_mid") : -1;
    h.ln2_scale = has_mlp && pre ? add(p + "ln2.hook_scale") : -1;
    h.ln2_normalized = has_mlp && pre ? add(p + "ln2.hook_normalized") : -1;
    h.mlp_pre = has_mlp ? add(p + "mlp.hook_pre") : -1;
    h.mlp_pre_linear = has_mlp && m_cfg.gated_mlp ? add(p + "mlp.hook_pre_linear") : -1;
    h.mlp_post = has_mlp ? add(p + "mlp.hook_post") : -1;
    h.ln2_post_scale = has_mlp && post ? add(p + "ln2_post.hook_scale") : -1;
    h.ln2_post_normalized = has_mlp && post ? add(p + "ln2_post.hook_normalized") : -1;
    h.mlp_out = has_mlp ? add(p + "hook_mlp_out") : -1;
    h.resid_post = add(p + "hook_resid_post");
    m_hooks.layers.push_back(h);
  }
  m_hooks.lnf_scale = add("ln_final.hook_scale");
  m_hooks.lnf_normalized = add("ln_final.hook_normalized");
}

}  // namespace ms
