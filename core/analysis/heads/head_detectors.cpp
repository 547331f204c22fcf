// Head detectors: detection patterns built from the tokens, the mul/abs similarity of attention
// patterns to them, and per-layer scoring of the patterns the attention observer shows, so no
// layer's pattern is kept longer than its own block.
#include "core/analysis/heads/head_detectors.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <functional>
#include <random>

#include "core/attention/attention_observer.h"
#include "core/tokenizer/tokenizer.h"

namespace ms {
namespace {

at::Tensor as_batch(const at::Tensor& tokens) {
  if (tokens.dim() == 1) return tokens.unsqueeze(0);
  if (tokens.dim() != 2) fail_usage("tokens must be [batch, pos] or [pos]");
  return tokens;
}

}  // namespace

namespace {

// Hands each wanted layer's whole pattern (B, H, T, T), float32 on the CPU, to a callback. The pass
// runs with one query block (attn_block = T), so the pattern is the same tensor, bit for bit, as
// the materialised blocks.*.attn.hook_pattern, and only one layer's pattern exists at a time.
class WholeLayerPattern : public AttentionObserver {
 public:
  WholeLayerPattern(int64_t only_layer, std::function<void(int64_t, const at::Tensor&)> use)
      : m_layer(only_layer), m_use(std::move(use)) {}
  bool wants_layer(int64_t layer) const override { return m_layer < 0 || layer == m_layer; }
  void on_block(AttentionBlock& b) override {
    MS_ASSERT(b.q_begin == 0 && b.k_begin == 0 && b.n_keys == b.n_queries);
    m_use(b.layer, b.pattern.to(at::kCPU, at::kFloat));
  }

 private:
  int64_t m_layer;
  std::function<void(int64_t, const at::Tensor&)> m_use;
};

// One forward pass over tokens [B, T] with obs watching; stops after stop_layers layers.
void observe_whole_layers(const Model& model, const at::Tensor& tokens, WholeLayerPattern& obs, int64_t stop_layers) {
  at::NoGradGuard no_grad;
  ForwardOptions fo;
  fo.attention = &obs;
  fo.attn_block = tokens.size(-1);
  fo.stop_at_layer = stop_layers;  // the unembedding is not needed
  model.forward(tokens, fo);
}

}  // namespace

at::Tensor score_layers(const Model& model, const at::Tensor& tokens,
                        const std::function<at::Tensor(int64_t, const at::Tensor&)>& per_layer) {
  const ModelConfig& c = model.config();
  at::Tensor out = at::zeros({c.n_layers, c.n_heads}, at::kDouble);
  WholeLayerPattern obs(-1, [&](int64_t layer, const at::Tensor& a) { out[layer].copy_(per_layer(layer, a)); });
  observe_whole_layers(model, as_batch(tokens), obs, c.n_layers);
  return out;
}

Result<HeadPattern> parse_head_pattern(const std::string& name) {
  if (name == "previous_token_head") return HeadPattern::kPreviousToken;
  if (name == "duplicate_token_head") return HeadPattern::kDuplicateToken;
  if (name == "induction_head") return HeadPattern::kInduction;
  return Error{ErrorCode::kUsage, "unknown head pattern '" + name +
                                      "' (previous_token_head, duplicate_token_head, induction_head)"};
}

const char* head_pattern_name(HeadPattern p) {
  switch (p) {
    case HeadPattern::kPreviousToken: return "previous_token_head";
    case HeadPattern::kDuplicateToken: return "duplicate_token_head";
    case HeadPattern::kInduction: return "induction_head";
  }
  return "?";
}

at::Tensor detection_pattern(HeadPattern pattern, const at::Tensor& tokens) {
  const bool single = tokens.dim() == 1;
  at::Tensor tok = as_batch(tokens).to(at::kCPU, at::kLong);
  const int64_t B = tok.size(0), T = tok.size(1);
  at::Tensor d;
  if (pattern == HeadPattern::kPreviousToken) {
    d = at::eye(T, at::kFloat).roll(-1, 1).tril(-1).unsqueeze(0).expand({B, T, T}).contiguous();
  } else {
    at::Tensor eq = (tok.unsqueeze(2) == tok.unsqueeze(1)).to(at::kFloat);  // [B, i, j]: tok[i] == tok[j]
    if (pattern == HeadPattern::kDuplicateToken) {
      d = eq.tril(-1);
    } else {
      // Key j is the token after an occurrence (at j - 1) of the query's token.
      d = at::zeros({B, T, T}, at::kFloat);
      if (T > 1) d.narrow(2, 1, T - 1).copy_(eq.narrow(2, 0, T - 1));
      d = d.tril(0);
    }
  }
  return single ? d[0] : d;
}

at::Tensor pattern_similarity(const at::Tensor& attn, const at::Tensor& detection,
                              const DetectOptions& opts) {
  if (attn.dim() != 4 || attn.size(2) != attn.size(3))
    fail_usage("attention patterns must be [batch, head, T, T]");
  const int64_t T = attn.size(2);
  at::Tensor a = attn.to(at::kDouble);
  at::Tensor d = detection.to(at::kDouble);
  if (d.dim() == 2) d = d.unsqueeze(0);
  if (d.size(-1) != T || d.size(-2) != T)
    fail_usage("detection pattern is " + std::to_string(d.size(-2)) + "x" + std::to_string(d.size(-1)) +
               ", attention is " + std::to_string(T) + "x" + std::to_string(T));
  d = d.unsqueeze(1);  // [B or 1, 1, T, T]
  // Positions excluded from both measures: key 0 and/or the diagonal.
  at::Tensor keep = at::ones({T, T}, at::kDouble);
  if (opts.exclude_bos) keep.select(1, 0).zero_();
  if (opts.exclude_current_token) keep.diagonal().zero_();
  if (opts.error_measure == ErrorMeasure::kMul) {
    at::Tensor ak = a * keep;
    return (ak * d).sum({2, 3}) / ak.sum({2, 3});
  }
  at::Tensor diff = (a - d).abs() * keep;
  return 1.0 - diff.mean({2, 3}) * static_cast<double>(T);
}

Result<at::Tensor> detect_heads(const Model& model, const at::Tensor& tokens,
                                const at::Tensor& detection, const DetectOptions& opts) {
  return guard([&] {
    at::Tensor tok = as_batch(tokens);
    return score_layers(model, tok, [&](int64_t, const at::Tensor& a) {
      return pattern_similarity(a, detection, opts).mean(0);
    });
  });
}

Result<at::Tensor> detect_heads(const Model& model, const at::Tensor& tokens, HeadPattern pattern,
                                const DetectOptions& opts) {
  return guard([&]() -> at::Tensor {
    at::Tensor tok = as_batch(tokens);
    Result<at::Tensor> r = detect_heads(model, tok, detection_pattern(pattern, tok), opts);
    if (!r) throw InputError(r.error().message, r.error().code);
    return *r;
  });
}

Result<at::Tensor> attention_to_position(const Model& model, const at::Tensor& tokens, int64_t k) {
  return guard([&] {
    at::Tensor tok = as_batch(tokens);
    const int64_t T = tok.size(1);
    if (k < 0 || k >= T) fail_usage("key position " + std::to_string(k) + " is outside the sequence");
    // The queries that see key k are k .. k + n - 1 (core/attention/visibility.h): all later ones
    // without a sliding window, the window's first n with one.
    return score_layers(model, tok, [&](int64_t layer, const at::Tensor& a) {
      const int64_t w = model.config().window(layer), n = w > 0 ? std::min(T - k, w) : T - k;
      // Column k, from the queries that can see it: [B, H, n] -> mean over queries and batch.
      return a.select(3, k).narrow(2, k, n).to(at::kDouble).mean(at::IntArrayRef{0, 2});
    });
  });
}

Result<at::Tensor> repeated_sequences(const Model& m, int64_t seq_len, int64_t n, uint64_t seed, int64_t lo,
                                      int64_t hi, bool no_bos) {
  return guard([&] {
    if (hi < 0) hi = m.config().d_vocab;
    if (lo < 0 || hi > m.config().d_vocab || hi - lo < seq_len)
      fail_usage("--vocab-range must lie in [0, " + std::to_string(m.config().d_vocab) + ") and hold --seq-len tokens");
    if (seq_len < 2 || n < 1) fail_usage("--seq-len must be at least 2 and --n at least 1");
    int32_t bos = -1;
    if (!no_bos) bos = m.tokenizer() ? m.tokenizer()->special().bos : m.config().bos_token_id;
    const int64_t T = 2 * seq_len + (bos >= 0 ? 1 : 0);
    if (m.config().pos == PosKind::kLearned && T > m.config().n_ctx)
      fail_usage("--seq-len: " + std::to_string(T) + " tokens exceed the model's " + std::to_string(m.config().n_ctx) +
                 " positions");
    std::mt19937_64 rng(seed);
    at::Tensor out = at::empty({n, T}, at::kLong);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int64_t> r;
      while (static_cast<int64_t>(r.size()) < seq_len) {
        int64_t x = lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo));
        if (x != bos && std::find(r.begin(), r.end(), x) == r.end()) r.push_back(x);
      }
      int64_t j = 0;
      if (bos >= 0) out[i][j++] = bos;
      for (int rep = 0; rep < 2; ++rep)
        for (int64_t x : r) out[i][j++] = x;
    }
    return out;
  });
}

Result<at::Tensor> layer_attention(const Model& model, const at::Tensor& tokens, int64_t layer) {
  return guard([&] {
    if (layer < 0 || layer >= model.config().n_layers)
      fail_usage("layer " + std::to_string(layer) + " is out of range");
    at::Tensor out;
    WholeLayerPattern obs(layer, [&](int64_t, const at::Tensor& a) { out = a.clone(); });
    observe_whole_layers(model, as_batch(tokens), obs, layer + 1);
    return out;
  });
}

}  // namespace ms
