// The engine's shared building blocks against independent references: the visibility mask (causal
// and sliding window) against the scalar rule and brute-force loops, the norm against a float64
// formula and the forward pass's own hook values, the logit lens against the model's logits, head
// ablation against zeroed output weights, the head detectors on the attention observer against
// the materialised hook_pattern (bit for bit), and the one token label.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/analysis/heads/head_ablation.h"
#include "core/analysis/heads/head_detectors.h"
#include "core/analysis/lens/logit_lens.h"
#include "core/attention/attention_stats.h"
#include "core/attention/visibility.h"
#include "core/model/context_warning.h"
#include "core/model/model_config.h"
#include "core/model/norm.h"
#include "core/tokenizer/token_label.h"
#include "core/tokenizer/tokenizer.h"
#include "hooks/activation_cache.h"
#include "tests/support/numerics.h"
#include "tests/support/tiny_models.h"
#include "tests/unit/tokenizer_vectors.h"

namespace ms {
namespace {

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// ---- visibility ----

TEST(Visibility, MaskEqualsBruteForceWithAndWithoutWindows) {
  for (int64_t w : {0, 1, 2, 3, 7}) {
    for (int64_t q0 : {0, 5}) {
      for (int64_t k0 : {0, 2}) {
        const int64_t nq = 9, nk = 13;
        at::Tensor m = visibility_mask(q0, nq, k0, nk, w);
        ASSERT_EQ(m.sizes(), (at::IntArrayRef{nq, nk}));
        auto acc = m.accessor<bool, 2>();
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t j = 0; j < nk; ++j) {
            const int64_t q = q0 + i, k = k0 + j;
            // Written out independently: the past and the key itself, and at most w positions.
            bool want = k <= q && (w == 0 || q - k <= w - 1);
            EXPECT_EQ(acc[i][j], want) << "w " << w << " q " << q << " k " << k;
            EXPECT_EQ(key_visible(q, k, w), want);
          }
      }
    }
    // first_visible_key: the first key a query sees, every earlier key unseen.
    for (int64_t q = 0; q < 12; ++q) {
      const int64_t f = first_visible_key(q, w);
      EXPECT_TRUE(key_visible(q, f, w));
      if (f > 0) {
        EXPECT_FALSE(key_visible(q, f - 1, w));
      }
    }
  }
}

TEST(Visibility, ForwardPatternIsZeroExactlyWhereTheMaskHidesAKey) {
  for (const char* fam : {"llama", "mistral"}) {
    auto m = test::tiny_model(fam, 2);
    const int64_t T = 11, w = m->config().sliding_window;
    HookRegistry reg;
    ActivationCache cache;
    reg.add_forward("blocks.*.attn.hook_pattern", cache_hook(cache));
    ForwardOptions fo;
    fo.hooks = &reg;
    m->forward(at::randint(0, 50, {1, T}, at::kLong), fo);
    at::Tensor a = cache["blocks.1.attn.hook_pattern"][0];  // (H, T, T)
    at::Tensor vis = visibility_mask(0, T, 0, T, w);
    EXPECT_TRUE(at::equal(a.ne(0).any(0), vis)) << fam;  // random heads put weight on every visible key
    EXPECT_LT(max_diff(a.sum(-1), at::ones({a.size(0), T})), 1e-5) << fam;
  }
}

// ---- norm ----

// LayerNorm / RMSNorm in float64, written out from their definitions.
at::Tensor norm_reference(const ModelConfig& c, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  at::Tensor xd = x.to(at::kDouble);
  if (c.norm == NormKind::kLayerNorm) {
    at::Tensor xc = xd - xd.mean(-1, true);
    at::Tensor y = xc / (xc.pow(2).mean(-1, true) + c.norm_eps).sqrt() * w.to(at::kDouble);
    return b.defined() ? y + b.to(at::kDouble) : y;
  }
  return xd / (xd.pow(2).mean(-1, true) + c.norm_eps).sqrt() * w.to(at::kDouble);
}

TEST(Norm, LayerNormAndRmsNormEqualTheirDefinitions) {
  for (const char* fam : {"gpt2", "llama"}) {
    ModelConfig c = test::tiny_config(fam);
    at::Tensor x = at::randn({2, 5, c.d_model}) * 3 + 1;
    at::Tensor w = at::randn({c.d_model}), b = c.norm == NormKind::kLayerNorm ? at::randn({c.d_model}) : at::Tensor();
    at::Tensor ref = norm_reference(c, x, w, b);
    EXPECT_LT(max_diff(apply_norm(c, x, w, b), ref), 1e-5) << fam;
    EXPECT_LT(max_diff(apply_norm_f32(c, x.to(at::kDouble), w, b), ref), 1e-5) << fam;
    // With taps: the scale and the normalised value pass through them and can be replaced.
    at::Tensor seen_scale, seen_norm;
    NormTaps taps{[&](const at::Tensor& s) { return seen_scale = s; }, [&](const at::Tensor& n) { return seen_norm = n; }};
    EXPECT_LT(max_diff(apply_norm(c, x, w, b, &taps), ref), 1e-5) << fam;
    at::Tensor xd = norm_centre(c, x.to(at::kDouble));
    EXPECT_LT(max_diff(seen_scale, (xd.pow(2).mean(-1, true) + c.norm_eps).sqrt()), 1e-5) << fam;
    EXPECT_LT(max_diff(seen_norm, norm_normalized_f32(c, x, w, b)), 1e-5) << fam;
    EXPECT_LT(max_diff(norm_inv_scale(c, norm_centre(c, x)), 1.0 / seen_scale), 1e-5) << fam;
  }
}

TEST(Norm, FinalNormAndLogitLensMatchTheForwardPass) {
  for (const char* fam : {"gpt2", "neox", "llama", "mistral"}) {
    auto m = test::tiny_model(fam, 4);
    const ModelConfig& c = m->config();
    at::Tensor toks = at::randint(0, 50, {1, 9}, at::kLong);
    HookRegistry reg;
    ActivationCache cache;
    for (const char* n : {"ln_final.hook_normalized", "blocks.*.hook_resid_post"}) reg.add_forward(n, cache_hook(cache));
    ForwardOptions fo;
    fo.hooks = &reg;
    at::Tensor logits = m->forward(toks, fo);  // (1, T, vocab)
    at::Tensor last = cache["blocks." + std::to_string(c.n_layers - 1) + ".hook_resid_post"];
    const ModelWeights& w = m->weights();
    EXPECT_LT(max_diff(norm_normalized_f32(c, last, w.ln_f_w, w.ln_f_b), cache["ln_final.hook_normalized"]), 1e-5) << fam;
    LogitLens lens(*m);
    at::Tensor lg = lens.logits(last[0]);
    const double scale = std::max(1.0, logits.abs().max().item<double>());
    EXPECT_LT(max_diff(lg, logits[0]) / scale, 1e-5) << fam;
    LogitLens::Top1 top = lens.top1(last[0]);
    EXPECT_TRUE(at::equal(top.ids, logits[0].argmax(-1))) << fam;
    // Top-k and the rank of the actual next token, against a full sort of the model's own logits.
    const int64_t T = toks.size(1);
    at::Tensor next = at::cat({toks[0].slice(0, 1), at::full({1}, -1, at::kLong)});  // last: no next token
    LogitLens::TopK tk = lens.topk(last[0], 5, next);
    at::Tensor order = lg.argsort(-1, /*descending=*/true);  // the lens' own logits: the same values
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(tk.ids[t][0].item<int64_t>(), top.ids[t].item<int64_t>()) << fam;
      for (int j = 0; j + 1 < 5; ++j) EXPECT_GE(tk.probs[t][j].item<float>(), tk.probs[t][j + 1].item<float>()) << fam;
      if (t == T - 1) {
        EXPECT_EQ(tk.target_rank[t].item<int64_t>(), -1) << fam;
        continue;
      }
      // The rank is where the target sits in the sorted logits (exact ties aside: none in random logits).
      const int64_t want = (order[t] == next[t]).nonzero()[0][0].item<int64_t>() + 1;
      EXPECT_EQ(tk.target_rank[t].item<int64_t>(), want) << fam << " position " << t;
      EXPECT_NEAR(tk.target_prob[t].item<float>(), at::softmax(lg[t], -1)[next[t]].item<float>(), 1e-6) << fam;
    }
  }
}

// ---- head ablation ----

TEST(HeadAblation, EqualsZeroingTheHeadsOutputWeights) {
  auto m = test::tiny_model("llama", 6);
  const ModelConfig& c = m->config();
  std::vector<HeadRef> heads = {{1, 2}, {0, 0}, {1, 3}};
  HookRegistry reg;
  add_head_ablation(reg, c, heads);
  ForwardOptions fo;
  fo.hooks = &reg;
  at::Tensor toks = at::randint(0, 50, {2, 7}, at::kLong);
  at::Tensor got = m->forward(toks, fo);
  ModelWeights w = m->weights();
  for (const HeadRef& h : heads) {
    w.layers[h.layer].w_o = w.layers[h.layer].w_o.clone();
    w.layers[h.layer].w_o.narrow(1, h.head * c.d_head, c.d_head).zero_();
  }
  auto ref = Model::from_weights(c, w);
  ASSERT_TRUE(ref.ok());
  at::Tensor want = (*ref)->forward(toks);
  EXPECT_LT(max_diff(got, want), 1e-5);
  EXPECT_GT(max_diff(got, m->forward(toks)), 1e-3);  // and it changes the output
  HookRegistry bad;
  EXPECT_THROW(add_head_ablation(bad, c, {{3, 0}}), InputError);
  EXPECT_THROW(add_head_ablation(bad, c, {{0, 4}}), InputError);
}

// ---- head detectors on the observer ----

TEST(HeadDetectorsOnObserver, EqualTheMaterialisedHookPatternBitForBit) {
  for (const char* fam : {"llama", "mistral"}) {
    auto m = test::tiny_model(fam, 8);
    const ModelConfig& c = m->config();
    const int64_t B = 2, T = 300;  // long enough that a default pass would split the queries
    at::Tensor toks = at::randint(0, 50, {B, T}, at::kLong);
    HookRegistry reg;
    ActivationCache cache;
    reg.add_forward("blocks.*.attn.hook_pattern", cache_hook(cache));
    ForwardOptions fo;
    fo.hooks = &reg;
    m->forward(toks, fo);
    for (HeadPattern p : {HeadPattern::kPreviousToken, HeadPattern::kInduction}) {
      DetectOptions o{true, false, ErrorMeasure::kAbs};
      at::Tensor got = detect_heads(*m, toks, p, o).value();
      at::Tensor d = detection_pattern(p, toks);
      for (int64_t l = 0; l < c.n_layers; ++l) {
        at::Tensor want = pattern_similarity(cache["blocks." + std::to_string(l) + ".attn.hook_pattern"], d, o).mean(0);
        EXPECT_TRUE(at::equal(got[l], want)) << fam << " layer " << l << " " << head_pattern_name(p);
      }
    }
    // layer_attention observes layer 1 alone, so layer 0 runs on the fused kernel, which equals the
    // materialising path to float32 reordering (tests/unit/test_fused_attention.cpp), not bitwise.
    at::Tensor a1 = layer_attention(*m, toks, 1).value();
    EXPECT_TRUE(test::close_rel(std::string(fam) + " layer 1 pattern", a1, cache["blocks.1.attn.hook_pattern"],
                                test::kReorderTol));
    // alpha_k averages over the queries that see key k: the streaming statistics' definition.
    AttentionStats stats(c.n_layers, c.n_heads, B, T, AttentionStatsOptions{false});
    ForwardOptions so;
    so.attention = &stats;
    m->forward(toks, so);
    for (int64_t k : {int64_t(0), int64_t(5), T - 2}) {
      at::Tensor alpha = attention_to_position(*m, toks, k).value();  // (L, H)
      EXPECT_LT(max_diff(alpha, stats.alpha().select(-1, k).mean(1)), 1e-6) << fam << " key " << k;
    }
  }
}

// ---- token label ----

TEST(TokenLabel, OneFormForEveryFrontEnd) {
  auto m = test::tiny_model("gpt2", 1);  // no tokenizer
  EXPECT_EQ(token_label(*m, 5), "<5>");
  EXPECT_EQ(token_label(nullptr, -1), "<-1>");
  EXPECT_EQ(token_id_label(49), "<49>");
}

TEST(TokenLabel, WhitespaceControlAndInvalidBytesWithGpt2) {
  MS_REQUIRE_REFERENCE();
  auto r = load_vocab_merges(test::ref_path("gpt2-tokenizer/encoder.json"), test::ref_path("gpt2-tokenizer/vocab.bpe"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Tokenizer* tok = r->get();
  EXPECT_EQ(token_label(tok, 262), " the");         // a leading space is kept
  EXPECT_EQ(token_label(tok, 220), " ");            // a lone space
  EXPECT_EQ(token_label(tok, 198), "\n");           // control bytes are the token's own bytes
  EXPECT_EQ(token_label(tok, 197), "\t");
  EXPECT_EQ(token_label(tok, 221), std::string(1, '\x7F'));  // DEL
  EXPECT_EQ(token_label(tok, 188), std::string(1, '\0'));    // NUL
  EXPECT_EQ(token_label(tok, 233), "\\x8B");        // not valid UTF-8 on its own: escaped
  EXPECT_EQ(token_label(tok, 50169), " \\xF0\\x9F\\x91");
  EXPECT_EQ(token_label(tok, 50256), "<|endoftext|>");
  EXPECT_EQ(token_label(tok, 50257), "<50257>");    // a padded embedding row past the vocabulary
  EXPECT_EQ(token_label(tok, -3), "<-3>");
}

// What people see: whitespace and control bytes as visible symbols, the rest as is; the stored
// label stays raw (the test above).
TEST(TokenLabel, DisplayMakesWhitespaceVisible) {
  EXPECT_EQ(token_display(" the"), "\u00b7the");
  EXPECT_EQ(token_display(" "), "\u00b7");
  EXPECT_EQ(token_display("\n\n"), "\u21b5\u21b5");
  EXPECT_EQ(token_display("\t"), "\u2192");
  EXPECT_EQ(token_display("\r"), "\\r");
  EXPECT_EQ(token_display(std::string(1, '\0')), "\\x00");
  EXPECT_EQ(token_display(std::string(1, '\x7F')), "\\x7F");
  EXPECT_EQ(token_display(""), "\u2205");
  EXPECT_EQ(token_display("caf\u00e9"), "caf\u00e9");          // UTF-8 passes through
  EXPECT_EQ(token_display("\\x8B"), "\\x8B");               // token_label's escape stays
  EXPECT_EQ(token_display("<|endoftext|>"), "<|endoftext|>");
}

TEST(ContextWarning, OnlyPastTheContext) {
  ModelConfig c;
  c.n_ctx = 128;
  EXPECT_EQ(context_warning(c, 128), "");
  EXPECT_EQ(context_warning(c, 0), "");
  std::string w = context_warning(c, 129);
  EXPECT_NE(w.find("129 tokens"), std::string::npos) << w;
  EXPECT_NE(w.find("context of 128"), std::string::npos) << w;
}

}  // namespace
}  // namespace ms
