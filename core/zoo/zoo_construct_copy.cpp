// The `copy` constructed model: a two-layer attention-only induction circuit written by hand. Head
// 0.0 copies the previous token's identity into its own subspace; head 1.0 matches the current token
// against it, attends to the token after the previous occurrence and copies that token to the logits.
#include <cmath>

#include "core/zoo/zoo_construct.h"
#include "core/zoo/zoo_construct_common.h"

namespace ms {
namespace {

// Residual layout (d_model 256 = 4 heads x 64).
constexpr int64_t kD = 256, kHeads = 4, kLayers = 2, kV = kZooVocab;
constexpr int64_t kTok = 0;      // one-hot of the current token (w_e)
constexpr int64_t kPrev = 64;    // one-hot of the previous token (written by head 0.0)
constexpr int64_t kOutTok = 128; // one-hot of the copied token (written by head 1.0, read by w_u)
constexpr int64_t kPos = 192;    // cos/sin of position for 8 periods 4..512, then (-1)^pos
constexpr int64_t kPosN = 17;
constexpr int64_t kPosMirror = 209;  // minus the position code, so positions sum to zero
constexpr int64_t kFirst = 226;      // 1 at position 0 only
constexpr int64_t kOne = 227, kOneNeg = 228, kBal = 229;
constexpr double kC = 30.0;
constexpr int kPeriods = 8;

// Attention scores (logits after the 1/sqrt(d_head) scale).
constexpr double kPosScale = 5.0;     // per unit of sum_f cos(w_f d) + (-1)^d (9 at d = 0, <= 6 elsewhere)
constexpr double kSinkScore = 10.0;   // first-token sink heads: key 0
constexpr double kMatchScore = 16.0;  // copy head: keys whose previous token is the current token
constexpr double kFallback = 4.0;     // copy head: key 0 when nothing matches
constexpr double kQueryOne = 4.0;
constexpr double kUnembed = 10.0;     // logit per unit of the copied-token subspace

constexpr double kPi = 3.14159265358979323846;
double omega(int f) { return 2.0 * kPi / std::pow(2.0, f + 2); }  // periods 4, 8, ..., 512

// A head whose score for key j at query p is kPosScale * (sum_f cos(w_f (p - shift - j)) + parity):
// largest at j = p - shift, by at least 3 * kPosScale over every other key within 256 positions.
void positional_head(construct::Head& h, int shift, double scale) {
  const double a = std::sqrt(kPosScale * scale);
  for (int f = 0; f < kPeriods; ++f) {
    const int64_t c = kPos + 2 * f, s = c + 1;
    const double cw = std::cos(omega(f) * shift), sw = std::sin(omega(f) * shift);
    h.q[2 * f][c].fill_(a * cw);
    h.q[2 * f][s].fill_(a * sw);
    h.q[2 * f + 1][s].fill_(a * cw);
    h.q[2 * f + 1][c].fill_(-a * sw);
    h.k[2 * f][c].fill_(a);
    h.k[2 * f + 1][s].fill_(a);
  }
  h.q[2 * kPeriods][kPos + 2 * kPeriods].fill_(shift % 2 ? -a : a);
  h.k[2 * kPeriods][kPos + 2 * kPeriods].fill_(a);
}

// Query: the constant dim; key: the position-0 feature. Key 0 scores `score`, the others 0.
void first_token_head(construct::Head& h, int64_t head_dim, double score, double scale) {
  h.q[head_dim][kOne].fill_(kQueryOne);
  h.k[head_dim][kFirst].fill_(score * scale / kQueryOne);
}

}  // namespace

ConstructedModel build_copy_model() {
  using namespace construct;
  ModelConfig cfg = gpt2_config(kLayers, kD, kHeads, /*d_mlp=*/0, /*tied=*/false);
  ModelWeights w = zero_weights(cfg);
  const double scale = std::sqrt(static_cast<double>(cfg.d_head));

  for (int64_t t = 0; t < kV; ++t) w.w_e[t][kTok + t].fill_(1.0);
  w.w_e.select(1, kOne).fill_(kC);
  w.w_e.select(1, kOneNeg).fill_(-kC);
  balance_rows(w.w_e, kBal);
  for (int64_t p = 0; p < kCtx; ++p) {
    for (int f = 0; f < kPeriods; ++f) {
      w.w_pos[p][kPos + 2 * f].fill_(std::cos(omega(f) * p));
      w.w_pos[p][kPos + 2 * f + 1].fill_(std::sin(omega(f) * p));
    }
    w.w_pos[p][kPos + 2 * kPeriods].fill_(p % 2 ? -1.0 : 1.0);
  }
  w.w_pos.narrow(1, kPosMirror, kPosN).copy_(-w.w_pos.narrow(1, kPos, kPosN));
  w.w_pos[0][kFirst].fill_(1.0);
  balance_rows(w.w_pos, kBal);
  // |x|^2 besides the pair: embeddings, plus about 3 for the identities the heads write.
  const double rest_sq = mean_sq_norm(w.w_e, {kOne, kOneNeg}) + mean_sq_norm(w.w_pos, {}) + 3.0;

  LayerWeights& l0 = w.layers[0];
  LayerWeights& l1 = w.layers[1];
  Head prev = head_view(cfg, l0, 0), sink01 = head_view(cfg, l0, 1), self02 = head_view(cfg, l0, 2),
       sink03 = head_view(cfg, l0, 3);
  Head copy = head_view(cfg, l1, 0), self11 = head_view(cfg, l1, 1), sink12 = head_view(cfg, l1, 2),
       prev13 = head_view(cfg, l1, 3);

  // 0.0 previous-token head: attends to p - 1, copies that token's one-hot into kPrev.
  positional_head(prev, 1, scale);
  for (int64_t t = 0; t < kV; ++t) {
    prev.v[t][kTok + t].fill_(1.0);
    prev.o[kPrev + t][t].fill_(1.0);
  }
  balance_columns(prev.o, kBal);
  // 1.0 copy (induction) head: head dims 1..63 match the current token (query) against the previous
  // token (key); head dim 0 gives key 0 a fallback score. It copies tokens 1..63 (not <bos>) into
  // kOutTok, which the unembedding reads.
  const double b = std::sqrt(kMatchScore * scale);
  first_token_head(copy, 0, kFallback, scale);
  for (int64_t t = 1; t < kV; ++t) {
    copy.q[t][kTok + t].fill_(b);
    copy.k[t][kPrev + t].fill_(b);
    copy.v[t][kTok + t].fill_(1.0);
    copy.o[kOutTok + t][t].fill_(1.0);
  }
  balance_columns(copy.o, kBal);
  // Distractors with no output: first-token sinks, current-token heads, a second previous-token head.
  first_token_head(sink01, 0, kSinkScore, scale);
  first_token_head(sink03, 0, kSinkScore, scale);
  first_token_head(sink12, 0, kSinkScore, scale);
  positional_head(self02, 0, scale);
  positional_head(self11, 0, scale);
  positional_head(prev13, 1, scale);

  for (LayerWeights& lw : w.layers) scaling_norm(lw.ln1_w, lw.ln1_b, kD, kOne, kOneNeg, kC, rest_sq);
  scaling_norm(w.ln_f_w, w.ln_f_b, kD, kOne, kOneNeg, kC, rest_sq);
  for (int64_t t = 0; t < kV; ++t) w.w_u[t][kOutTok + t].fill_(kUnembed);

  auto role = [](int l, int h, const char* r, const std::string& how) {
    return nlohmann::json{{"layer", l}, {"head", h}, {"role", r}, {"how", how}};
  };
  const std::string pos_how = "query and key read the position code (cos/sin for periods 4..512 and "
                              "(-1)^pos); scores 5 * (sum_f cos(w_f d) + (-1)^d), largest at ";
  nlohmann::json heads = nlohmann::json::array({
      role(0, 0, "previous_token", pos_how + "key p-1; writes the key's token one-hot into dims 64..127"),
      role(0, 1, "first_token_sink", "key 0 scores 10, the others 0; writes nothing"),
      role(0, 2, "current_token", pos_how + "key p; writes nothing"),
      role(0, 3, "first_token_sink", "key 0 scores 10, the others 0; writes nothing"),
      role(1, 0, "copy",
           "query: current token one-hot; key: previous-token one-hot (dims 64..127): keys whose previous "
           "token is the current token score 16, key 0 scores 4, the others 0; copies the key's token "
           "(ids 1..63) into dims 128..191, read by the unembedding (logit 10 per unit)"),
      role(1, 1, "current_token", pos_how + "key p; writes nothing"),
      role(1, 2, "first_token_sink", "key 0 scores 10, the others 0; writes nothing"),
      role(1, 3, "previous_token", pos_how + "key p-1; writes nothing"),
  });

  // A check prompt: <bos>, 40 distinct ordinary tokens, <delim>, their first 8 again.
  std::vector<int32_t> needle;
  for (int32_t t = 0; t < 40; ++t) needle.push_back(kZooFirstOrdinary + (t * 37) % 62);
  std::vector<int32_t> prompt = {kZooBos};
  prompt.insert(prompt.end(), needle.begin(), needle.end());
  prompt.push_back(kZooDelim);
  prompt.insert(prompt.end(), needle.begin(), needle.begin() + 8);
  std::vector<int32_t> continuation(needle.begin() + 8, needle.end());

  ConstructedModel m;
  m.name = "copy";
  m.config = cfg;
  m.weights = std::move(w);
  m.zoo = {
      {"name", "copy"},
      {"kind", "constructed"},
      {"architecture", "gpt2"},
      {"shape", {{"n_layers", kLayers}, {"n_heads", kHeads}, {"d_model", kD}, {"d_head", cfg.d_head}, {"d_mlp", 0}, {"n_ctx", kCtx}}},
      {"vocabulary", vocabulary_json()},
      {"copy_heads", head_list({{1, 0}})},
      {"retrieval_heads", head_list({{1, 0}})},
      {"copy_attends_to", "next_after_previous_occurrence"},
      {"copy_attends_to_detail",
       "from the current token the copy head attends to the position right after the previous occurrence "
       "of that token, whose token is the one it copies (the next greedy token); with no earlier "
       "occurrence it rests on position 0"},
      {"previous_token_heads", head_list({{0, 0}, {1, 3}})},
      {"current_token_heads", head_list({{0, 2}, {1, 1}})},
      {"sink_heads", head_list({{0, 1}, {0, 3}, {1, 2}})},
      {"massive", nlohmann::json::array()},
      {"heads", heads},
      {"prompt_lengths", {{"min", 2}, {"max", kCtx}}},
      {"prompt_recipe",
       "[<bos>, n distinct ordinary tokens (ids 2..63, n <= 62), <delim>, the first m of them again]: greedy "
       "decoding continues with the remaining n - m. A token that occurs twice before makes the copy head "
       "split its attention between both continuations."},
      {"check_prompts", {prompt}},
      {"check_continuations", {continuation}},
      {"construction",
       "GPT-2 layout, attention only, untied unembedding. Residual subspaces: dims 0..63 current-token "
       "one-hot, 64..127 previous-token one-hot, 128..191 copied-token one-hot, 192..208 a position code "
       "(cos, sin of 2 pi pos / P for P = 4, 8, ..., 512, then (-1)^pos) and 209..225 its negation, 226 a "
       "position-0 flag, 227/228 the constant pair +30/-30, 229 minus the sum of the rest. Every vector "
       "has zero mean and |x|^2 close to 2 * 30^2 + 24, so LayerNorm is a near-constant rescaling that its "
       "weight undoes; the pair gets weight 0 and LN's bias puts a constant 1 in dim 227 for queries. "
       "Positional heads score 5 * (sum_f cos(w_f (p - shift - j)) + (-1)^(p - shift - j)): 45 at the "
       "target key, at least 15 less at every other key. The copy head's match score is 16 against 4 for "
       "key 0 and 0 elsewhere, so it puts more than 0.999 of its attention on the matching key."}};
  return m;
}

}  // namespace ms
