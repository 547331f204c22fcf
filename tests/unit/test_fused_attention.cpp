// The fused attention kernel against an independent float64 reference (softmax of the masked
// scores times V), and the forward pass on its fused path against its materialising path on
// logits, hook_z and the residual stream: every family, GQA, sliding windows shorter than the
// prompt, the KV cache (prefill, then decode), lengths that are not multiples of the tiles, T = 1
// (the decode path, with its statistics).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "core/attention/attention_stats.h"
#include "core/attention/fused_attention.h"
#include "core/zoo/zoo_random.h"
#include "hooks/activation_cache.h"
#include "tests/support/tiny_models.h"

namespace ms {
namespace {

// max |a - b| / max |b|: float32 sums over d_head and over the keys, in another order than the
// reference's, differ by a few ulp of the largest terms (about 1e-7 here); 1e-5 leaves a margin
// of 100 and still fails on any wrong weight (a masked key let in moves outputs by ~1e-1).
double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor bd = b.to(at::kDouble);
  return (a.to(at::kDouble) - bd).abs().max().item<double>() / std::max(1e-30, bd.abs().max().item<double>());
}

// softmax(q k^T * scale + mask) v in float64 with the mask built from positions.
at::Tensor reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t past, int64_t window,
                     double scale) {
  const int64_t T = q.size(1), H = q.size(2), KV = k.size(1), S = k.size(2);
  at::Tensor qd = q.to(at::kDouble).transpose(1, 2);                                  // (B, H, T, dh)
  at::Tensor kd = k.to(at::kDouble).repeat_interleave(H / KV, 1), vd = v.to(at::kDouble).repeat_interleave(H / KV, 1);
  at::Tensor s = at::matmul(qd, kd.transpose(-1, -2)) * scale;                         // (B, H, T, S)
  at::Tensor qpos = at::arange(past, past + T, at::kLong).unsqueeze(1), kpos = at::arange(0, S, at::kLong).unsqueeze(0);
  at::Tensor hidden = (qpos - kpos) < 0;
  if (window > 0) hidden = hidden.logical_or((qpos - kpos) >= window);
  s = s.masked_fill(hidden, -INFINITY);
  return at::matmul(at::softmax(s, -1), vd).transpose(1, 2);                          // (B, T, H, dh)
}

struct KernelCase {
  int64_t B, T, H, KV, dh, past, window, q_tile, k_tile;
};

TEST(FusedAttention, KernelEqualsReference) {
  at::manual_seed(3);
  const KernelCase cases[] = {
      {2, 37, 4, 4, 8, 0, 0, 5, 16},     // gpt2-like, odd length, several partial tiles
      {1, 1, 4, 2, 16, 0, 0, 0, 0},      // T = 1
      {2, 45, 8, 2, 24, 0, 0, 7, 16},    // GQA 4 heads per KV head, d_head not a multiple of 16
      {1, 53, 4, 1, 64, 0, 20, 6, 16},   // sliding window shorter than the prompt: tiles skipped
      {2, 1, 6, 3, 32, 40, 0, 0, 16},    // decode after 40 cached positions
      {1, 9, 4, 2, 32, 30, 12, 4, 16},   // several new positions after a cache, with a window
      {1, 300, 2, 1, 64, 0, 0, 0, 0},    // default tiles, longer than one key tile
  };
  for (const KernelCase& c : cases)
    for (bool portable : {false, true}) {
      // q as a view into a wider (qkv-like) buffer, k and v as transposed views: strides as in the model.
      at::Tensor qkv = at::randn({c.B, c.T, c.H * c.dh + 7});
      at::Tensor q = qkv.narrow(2, 0, c.H * c.dh).view({c.B, c.T, c.H, c.dh});
      at::Tensor k = at::randn({c.B, c.past + c.T, c.KV, c.dh}).transpose(1, 2);
      at::Tensor v = at::randn({c.B, c.past + c.T, c.KV, c.dh}).transpose(1, 2);
      FusedAttentionOptions o;
      o.past = c.past, o.sliding_window = c.window, o.scale = 1.0 / std::sqrt(double(c.dh));
      o.q_tile = c.q_tile, o.k_tile = c.k_tile, o.portable = portable;
      at::Tensor z = fused_attention(q, k, v, o);
      ASSERT_EQ(z.sizes(), q.sizes());
      const double d = rel_diff(z, reference(q, k, v, c.past, c.window, o.scale));
      EXPECT_LT(d, 1e-5) << "T " << c.T << " H " << c.H << " KV " << c.KV << " dh " << c.dh << " past " << c.past
                         << " window " << c.window << " kernels " << fused_attention_kernels(portable);
    }
}

// The decode path (one query per head: scores over every key kept whole, K and V read in place)
// against the float64 reference and against the tiled path, with every statistic: key mass,
// entropy, argmax and max weight from the reference's own softmax. Group sizes 1 to 8 (the
// kernels take rows four, two and one at a time), d_head not a multiple of 8, the multiples of 16
// the AVX-512 products hold in 1 to 8 vectors a row (32 to 256), windows, batch rows.
TEST(FusedAttention, DecodePathEqualsReferenceWithStatistics) {
  at::manual_seed(11);
  struct Case { int64_t B, H, KV, dh, past, window; };
  const Case cases[] = {{1, 16, 4, 64, 300, 0}, {2, 6, 2, 20, 50, 0}, {1, 5, 5, 12, 77, 16}, {1, 8, 1, 24, 40, 10},
                        {1, 4, 2, 136, 30, 0},  // d_head 136: the accumulator in register chunks 8 + 8 + 1
                        {1, 16, 2, 32, 90, 0}, {1, 14, 2, 64, 70, 0}, {1, 4, 2, 128, 45, 0}, {1, 6, 2, 256, 33, 0},
                        {1, 10, 2, 80, 20, 0}};
  for (const Case& c : cases)
    for (bool portable : {false, true})
      for (bool tiled : {false, true}) {
        const int64_t S = c.past + 1;
        at::Tensor q = at::randn({c.B, 1, c.H, c.dh}) * 2;  // peaked rows: well-separated maxima
        at::Tensor k = at::randn({c.B, S, c.KV, c.dh}).transpose(1, 2), v = at::randn({c.B, S, c.KV, c.dh}).transpose(1, 2);
        const std::string what = "H " + std::to_string(c.H) + " KV " + std::to_string(c.KV) + " dh " +
                                 std::to_string(c.dh) + " window " + std::to_string(c.window) +
                                 (portable ? " portable" : " avx2") + (tiled ? " tiled" : " decode path");
        at::Tensor key_mass = at::zeros({c.B, c.H, S}), entropy = at::zeros({c.B, c.H, S}),
                   max_weight = at::zeros({c.B, c.H, S});
        at::Tensor argmax = at::full({c.B, c.H, S}, -1, at::kLong);
        FusedAttentionStats st;
        st.batch = c.B, st.n_heads = c.H;
        st.key_mass = key_mass.data_ptr<float>(), st.key_positions = S;
        st.entropy = entropy.data_ptr<float>(), st.argmax = argmax.data_ptr<int64_t>();
        st.max_weight = max_weight.data_ptr<float>(), st.query_positions = S;
        FusedAttentionOptions o;
        o.past = c.past, o.sliding_window = c.window, o.scale = 1.0 / std::sqrt(double(c.dh));
        o.portable = portable, o.tiled_decode = tiled, o.stats = &st;
        at::Tensor z = fused_attention(q, k, v, o);
        EXPECT_LT(rel_diff(z, reference(q, k, v, c.past, c.window, o.scale)), 1e-5) << what;
        // The reference's weights of the one query: (B, H, S).
        at::Tensor kd = k.to(at::kDouble).repeat_interleave(c.H / c.KV, 1);
        at::Tensor sc = at::matmul(q.to(at::kDouble).transpose(1, 2), kd.transpose(-1, -2)).squeeze(2) * o.scale;
        at::Tensor kpos = at::arange(0, S, at::kLong);
        at::Tensor hidden = c.window > 0 ? (c.past - kpos) >= c.window : at::zeros({S}, at::kBool);
        at::Tensor a = at::softmax(sc.masked_fill(hidden, -INFINITY), -1);
        EXPECT_LT(rel_diff(key_mass, a), 1e-5) << what;
        at::Tensor ent = -(a * a.clamp_min(1e-300).log()).sum(-1);
        EXPECT_LT(rel_diff(entropy.select(2, c.past), ent), 1e-5) << what;
        EXPECT_LT(rel_diff(max_weight.select(2, c.past), std::get<0>(a.max(-1))), 1e-5) << what;
        EXPECT_TRUE(argmax.select(2, c.past).equal(std::get<1>(a.max(-1)))) << what;
      }
}

// The kernel's statistics against float64 ATen on the same masked scores: per query entropy
// -sum A log A, argmax and max weight, per key the mass sum over the queries of A.
struct ReferenceStats {
  at::Tensor entropy, argmax, max_weight, key_mass;  // (B, H, T) x 3 and (B, H, past + T)
  at::Tensor gap;                                    // (B, H, T): a row's best score less its second
};

ReferenceStats reference_stats(const at::Tensor& q, const at::Tensor& k, int64_t past, int64_t window, double scale) {
  const int64_t T = q.size(1), H = q.size(2), KV = k.size(1), S = k.size(2);
  at::Tensor qd = q.to(at::kDouble).transpose(1, 2), kd = k.to(at::kDouble).repeat_interleave(H / KV, 1);
  at::Tensor s = at::matmul(qd, kd.transpose(-1, -2)) * scale;  // (B, H, T, S)
  at::Tensor qpos = at::arange(past, past + T, at::kLong).unsqueeze(1), kpos = at::arange(0, S, at::kLong).unsqueeze(0);
  at::Tensor hidden = (qpos - kpos) < 0;
  if (window > 0) hidden = hidden.logical_or((qpos - kpos) >= window);
  s = s.masked_fill(hidden, -INFINITY);
  at::Tensor a = at::softmax(s, -1);
  ReferenceStats r;
  r.entropy = -at::xlogy(a, a).sum(-1);
  r.max_weight = std::get<0>(a.max(-1));
  r.argmax = s.argmax(-1);
  r.key_mass = a.sum(2);
  at::Tensor top2 = std::get<0>(s.topk(2, -1));  // every query here sees at least two keys
  r.gap = top2.select(-1, 0) - top2.select(-1, 1);
  return r;
}

// Many key tiles per query (k_tile 16 over up to 230 keys), partial tiles, a KV cache, sliding
// windows and GQA, with scores whose running max moves across the tiles (keys grow along the
// sequence), so that every online rescale of the sum, of u and of the kept weights is exercised.
TEST(FusedAttention, KernelStatisticsEqualReference) {
  at::manual_seed(11);
  struct Case {
    int64_t past, window;
  };
  const int64_t B = 2, T = 200, H = 8, KV = 2, dh = 24;
  for (const Case& c : {Case{30, 0}, Case{30, 50}, Case{0, 37}})
    for (bool portable : {false, true}) {
      const int64_t S = c.past + T;
      at::Tensor q = at::randn({B, T, H, dh});
      at::Tensor grow = at::linspace(0.3, 2.0, S).view({1, 1, S, 1});
      at::Tensor k = at::randn({B, KV, S, dh}) * grow, v = at::randn({B, KV, S, dh});
      FusedAttentionOptions o;
      o.past = c.past, o.sliding_window = c.window, o.scale = 3.0 / std::sqrt(double(dh));
      o.q_tile = 5, o.k_tile = 16, o.portable = portable;
      at::Tensor key_mass = at::zeros({B, H, S}), entropy = at::zeros({B, H, S}), max_weight = at::zeros({B, H, S});
      at::Tensor argmax = at::full({B, H, S}, -1, at::kLong);
      FusedAttentionStats st;
      st.batch = B, st.n_heads = H;
      st.key_mass = key_mass.data_ptr<float>(), st.key_positions = S;
      st.entropy = entropy.data_ptr<float>(), st.argmax = argmax.data_ptr<int64_t>();
      st.max_weight = max_weight.data_ptr<float>(), st.query_positions = S;
      o.stats = &st;
      at::Tensor z = fused_attention(q, k, v, o);
      const ReferenceStats ref = reference_stats(q, k, c.past, c.window, o.scale);
      const std::string what = "past " + std::to_string(c.past) + " window " + std::to_string(c.window) + " kernels " +
                               fused_attention_kernels(portable);
      // The best key lies beyond the row's first visible key tile for most rows: the max moved.
      at::Tensor qpos = at::arange(c.past, S, at::kLong);
      at::Tensor first = c.window > 0 ? (qpos - c.window + 1).clamp_min(0) : at::zeros_like(qpos);
      const double moved = (ref.argmax - first >= o.k_tile).to(at::kDouble).mean().item<double>();
      EXPECT_GT(moved, 0.5) << what;
      EXPECT_LT(rel_diff(z, reference(q, k, v, c.past, c.window, o.scale)), 1e-5) << what << " z";
      const double d_ent = rel_diff(entropy.narrow(-1, c.past, T), ref.entropy);
      const double d_maxw = rel_diff(max_weight.narrow(-1, c.past, T), ref.max_weight);
      const double d_mass = rel_diff(key_mass, ref.key_mass);
      EXPECT_LT(d_ent, 1e-5) << what << " entropy";
      EXPECT_LT(d_maxw, 1e-5) << what << " max weight";
      EXPECT_LT(d_mass, 1e-5) << what << " key mass";
      // argmax exactly where the two best scores are apart by more than float32's rounding of a
      // score (~1e-6 here): random inputs leave only a rare row (of 3,200) that close.
      at::Tensor clear = ref.gap > 1e-4;
      const int64_t ties = clear.numel() - clear.sum().item<int64_t>();
      EXPECT_LE(ties, 3) << what << ": too many near ties in the inputs for argmax to be checked";
      EXPECT_TRUE(at::equal(argmax.narrow(-1, c.past, T).masked_select(clear), ref.argmax.masked_select(clear)))
          << what << " argmax";
      EXPECT_TRUE(at::equal(argmax.narrow(-1, 0, c.past), at::full({B, H, c.past}, -1, at::kLong))) << what;
      std::printf("[ stats    ] %s: entropy %.2e, max weight %.2e, key mass %.2e; best key beyond the first "
                  "tile %.0f%%, near ties %lld\n",
                  what.c_str(), d_ent, d_maxw, d_mass, 100 * moved, static_cast<long long>(ties));
    }
}

// Soft-capping (Gemma 2) inside the kernel, tiled and on the decode path, against the float64
// reference with cap * tanh(s / cap) applied to the scaled scores before the mask; scores scaled
// up so that the cap bends most of them.
TEST(FusedAttention, SoftCappingEqualsReference) {
  at::manual_seed(12);
  for (int64_t T : {41, 1})
    for (bool portable : {false, true}) {
      const int64_t B = 2, H = 4, KV = 2, dh = 16, past = T == 1 ? 50 : 0;
      const double cap = 2.5;
      at::Tensor q = at::randn({B, T, H, dh}) * 3;
      at::Tensor k = at::randn({B, past + T, KV, dh}).transpose(1, 2), v = at::randn({B, past + T, KV, dh}).transpose(1, 2);
      FusedAttentionOptions o;
      o.past = past, o.scale = 1.0 / std::sqrt(double(dh)), o.softcap = cap, o.portable = portable;
      o.q_tile = 5, o.k_tile = 16;
      at::Tensor z = fused_attention(q, k, v, o);
      at::Tensor qd = q.to(at::kDouble).transpose(1, 2);
      at::Tensor kd = k.to(at::kDouble).repeat_interleave(H / KV, 1), vd = v.to(at::kDouble).repeat_interleave(H / KV, 1);
      at::Tensor s = at::tanh(at::matmul(qd, kd.transpose(-1, -2)) * o.scale / cap) * cap;
      at::Tensor qpos = at::arange(past, past + T, at::kLong).unsqueeze(1), kpos = at::arange(0, past + T, at::kLong).unsqueeze(0);
      at::Tensor ref = at::matmul(at::softmax(s.masked_fill(qpos < kpos, -INFINITY), -1), vd).transpose(1, 2);
      EXPECT_LT(rel_diff(z, ref), 1e-5) << "T " << T << (portable ? " portable" : " avx2");
      o.softcap = 0;  // and the cap matters here: without it the output moves far beyond the bound
      EXPECT_GT(rel_diff(fused_attention(q, k, v, o), ref), 1e-3) << "T " << T;
    }
}

TEST(FusedAttention, Bf16InputsComputeInFloat32) {
  at::manual_seed(4);
  at::Tensor q = at::randn({1, 20, 4, 16}).to(at::kBFloat16);
  at::Tensor k = at::randn({1, 2, 20, 16}).to(at::kBFloat16), v = at::randn({1, 2, 20, 16}).to(at::kBFloat16);
  FusedAttentionOptions o;
  o.scale = 0.25;
  at::Tensor z = fused_attention(q, k, v, o);
  EXPECT_EQ(z.scalar_type(), at::kBFloat16);
  // Against the float64 reference of the same bf16 values: only the output's rounding to bf16
  // (2^-9 relative) remains.
  EXPECT_LT(rel_diff(z, reference(q, k, v, 0, 0, 0.25)), 4e-3);
}

// Runs the model both ways and compares logits, hook_z and resid_post of every layer.
void expect_paths_equal(const Model& m, const at::Tensor& toks, int64_t q_tile, int64_t k_tile, const std::string& what) {
  ActivationCache fused_acts, mat_acts;
  HookRegistry fused_reg, mat_reg;
  for (auto p : {std::make_pair(&fused_reg, &fused_acts), std::make_pair(&mat_reg, &mat_acts)}) {
    p.first->add_forward("blocks.*.attn.hook_z", cache_hook(*p.second));
    p.first->add_forward("blocks.*.hook_resid_post", cache_hook(*p.second));
  }
  ForwardOptions fo, mo;
  fo.hooks = &fused_reg, fo.attn_block = q_tile, fo.attn_key_tile = k_tile, fo.attention_kernel = AttentionKernel::kFused;
  mo.hooks = &mat_reg, mo.attention_kernel = AttentionKernel::kMaterialise;
  const int64_t calls = fused_attention_calls();
  at::Tensor lf = m.forward(toks, fo), lm = m.forward(toks, mo);
  EXPECT_EQ(fused_attention_calls() - calls, m.config().n_layers) << what << ": the fused path did not run";
  EXPECT_LT(rel_diff(lf, lm), 1e-5) << what << " logits";
  for (int64_t l = 0; l < m.config().n_layers; ++l)
    for (std::string name : {"attn.hook_z", "hook_resid_post"}) {
      const std::string key = "blocks." + std::to_string(l) + "." + name;
      ASSERT_TRUE(fused_acts.contains(key) && mat_acts.contains(key)) << key;
      EXPECT_LT(rel_diff(fused_acts[key], mat_acts[key]), 1e-5) << what << " " << key;
    }
}

std::unique_ptr<Model> model_with_window(int64_t window) {
  ModelConfig c = test::tiny_config("mistral");
  c.sliding_window = window;
  auto m = Model::from_weights(c, random_weights(c, 9, 0.3));
  if (!m) throw std::runtime_error(m.error().message);
  return std::move(*m);
}

TEST(FusedAttention, ForwardEqualsMaterialisingPath) {
  at::manual_seed(5);
  for (const char* fam : {"gpt2", "neox", "llama", "mistral", "attn_only", "qwen3", "gemma2", "gemma3", "phi3", "olmo2"}) {
    auto m = test::tiny_model(fam, 6);
    for (int64_t T : {1, 23, 37})
      for (auto tiles : {std::make_pair<int64_t, int64_t>(0, 0), std::make_pair<int64_t, int64_t>(5, 16)}) {
        at::Tensor toks = at::randint(0, 50, {2, T}, at::kLong);
        expect_paths_equal(*m, toks, tiles.first, tiles.second,
                           std::string(fam) + " T " + std::to_string(T) + " q_tile " + std::to_string(tiles.first));
      }
  }
  auto windowed = model_with_window(20);  // a window longer than a key tile, shorter than the prompt
  expect_paths_equal(*windowed, at::randint(0, 50, {1, 61}, at::kLong), 6, 16, "mistral window 20");
}

TEST(FusedAttention, KvCachePrefillThenDecode) {
  at::manual_seed(6);
  for (const char* fam : {"gpt2", "llama", "mistral", "gemma2", "phi3"}) {
    auto m = test::tiny_model(fam, 7);
    at::Tensor toks = at::randint(0, 50, {2, 26}, at::kLong);
    KVCache cf = m->make_cache(2, 26), cm = m->make_cache(2, 26);
    ForwardOptions fo, mo;
    fo.cache = &cf, fo.attn_block = 4, fo.attn_key_tile = 16, fo.attention_kernel = AttentionKernel::kFused;
    mo.cache = &cm, mo.attention_kernel = AttentionKernel::kMaterialise;
    EXPECT_LT(rel_diff(m->forward(toks.narrow(1, 0, 19), fo), m->forward(toks.narrow(1, 0, 19), mo)), 1e-5) << fam;
    at::Tensor lf;
    for (int64_t t = 19; t < 26; ++t) {
      at::Tensor one = toks.narrow(1, t, 1);
      lf = m->forward(one, fo);
      EXPECT_LT(rel_diff(lf, m->forward(one, mo)), 1e-5) << fam << " decode step " << t;
    }
    // The last decoded logits equal the whole sequence's last position run without a cache.
    EXPECT_LT(rel_diff(lf, m->forward(toks).narrow(1, 25, 1)), 1e-5) << fam << " decode against no cache";
  }
}

// Statistics from the fused pass against the materialising path's (AttentionStats reading each
// block's pattern), over a prompt, or a prefill and decode steps with the KV cache.
void expect_stats_equal(const Model& m, const at::Tensor& toks, int64_t prefill, const std::string& what) {
  const ModelConfig& c = m.config();
  const int64_t B = toks.size(0), T = toks.size(1);
  AttentionStats fused(c.n_layers, c.n_heads, B, T), mat(c.n_layers, c.n_heads, B, T);
  KVCache cf = m.make_cache(B, T), cm = m.make_cache(B, T);
  ForwardOptions fo, mo;
  fo.attention = &fused, fo.cache = &cf, fo.attn_block = 5, fo.attn_key_tile = 16;
  mo.attention = &mat, mo.cache = &cm, mo.attention_kernel = AttentionKernel::kMaterialise;
  const int64_t calls = fused_attention_calls();
  m.forward(toks.narrow(1, 0, prefill), fo);
  m.forward(toks.narrow(1, 0, prefill), mo);
  for (int64_t t = prefill; t < T; ++t) {
    m.forward(toks.narrow(1, t, 1), fo);
    m.forward(toks.narrow(1, t, 1), mo);
  }
  EXPECT_EQ(fused_attention_calls() - calls, c.n_layers * (1 + T - prefill)) << what << ": the fused path did not run";
  EXPECT_TRUE(at::equal(fused.key_visible(), mat.key_visible())) << what;
  EXPECT_LT(rel_diff(fused.key_mass(), mat.key_mass()), 1e-5) << what << " key mass";
  EXPECT_LT(rel_diff(fused.alpha(), mat.alpha()), 1e-5) << what << " alpha";
  EXPECT_LT(rel_diff(fused.entropy(), mat.entropy()), 1e-5) << what << " entropy";
  EXPECT_LT(rel_diff(fused.max_weight(), mat.max_weight()), 1e-5) << what << " max weight";
  EXPECT_TRUE(at::equal(fused.argmax(), mat.argmax())) << what << " argmax";
  at::Tensor sinks = at::tensor({0, 3}, at::kLong);
  EXPECT_LT(rel_diff(fused.mass_on(sinks), mat.mass_on(sinks)), 1e-5) << what << " sink mass";
}

TEST(FusedAttention, StatisticsEqualMaterialisingPath) {
  at::manual_seed(8);
  for (const char* fam : {"gpt2", "neox", "llama", "mistral", "qwen3", "gemma2", "gemma3", "phi3", "olmo2"}) {
    auto m = test::tiny_model(fam, 10);
    at::Tensor toks = at::randint(0, 50, {2, 37}, at::kLong);
    expect_stats_equal(*m, toks, 37, std::string(fam) + " prompt");
    expect_stats_equal(*m, toks, 30, std::string(fam) + " prefill + decode");
  }
  expect_stats_equal(*model_with_window(20), at::randint(0, 50, {1, 61}, at::kLong), 55, "mistral window 20");
}

}  // namespace
}  // namespace ms
