// The `sink` constructed model: first-token attention sinks made by a positional key, a hidden sink
// on the delimiter made by a token key, and near-uniform heads, with margins chosen so the analyses'
// thresholds (alpha_0 > 0.3; alpha_k > 0.1 or > 5x uniform) separate them on 64..256-token prompts.
#include <cmath>

#include "core/zoo/zoo_construct.h"
#include "core/zoo/zoo_construct_common.h"

namespace ms {
namespace {

// Residual layout (d_model 64).
constexpr int64_t kD = 64, kHeads = 4, kLayers = 2;
constexpr int64_t kOne = 0, kOneNeg = 1;  // the constant pair +kC / -kC
constexpr int64_t kFirst = 2;             // 1 at position 0 only (w_pos[0])
constexpr int64_t kDelimDim = 3;          // 1 for the delimiter token only (w_e[<delim>])
constexpr int64_t kTokFill = 4, kTokFillN = 36;  // random token content
constexpr int64_t kPosFill = 40, kPosFillN = 12; // random position content
constexpr int64_t kOut = 52, kOutN = 11;         // where heads write
constexpr int64_t kBal = 63;                     // minus the sum of the rest
constexpr double kC = 20.0;

// Score (logit) a planted head gives its sink key; every other key scores 0.
constexpr double kSinkScore = 12.0, kSinkScoreWeak = 9.0, kHiddenScore = 7.0;
constexpr double kQueryOne = 4.0;   // query weight on the constant dim
constexpr double kUniformStd = 0.15, kValueStd = 0.2;
constexpr uint64_t kSeed = 1001;

enum class Role { kUniform, kSink, kHidden };
struct Plan {
  int layer, head;
  Role role;
  double score;
};
const Plan kPlan[] = {
    {0, 0, Role::kUniform, 0.0}, {0, 1, Role::kSink, kSinkScore},
    {0, 2, Role::kUniform, 0.0}, {0, 3, Role::kUniform, 0.0},
    {1, 0, Role::kSink, kSinkScore}, {1, 1, Role::kUniform, 0.0},
    {1, 2, Role::kHidden, kHiddenScore}, {1, 3, Role::kSink, kSinkScoreWeak},
};

}  // namespace

ConstructedModel build_sink_model() {
  using namespace construct;
  ModelConfig cfg = gpt2_config(kLayers, kD, kHeads, /*d_mlp=*/0, /*tied=*/true);
  ModelWeights w = zero_weights(cfg);
  at::Generator gen = at::detail::createCPUGenerator(kSeed);
  const int64_t dh = cfg.d_head;
  const double score_scale = std::sqrt(static_cast<double>(dh));  // the forward pass divides by it

  // Embeddings: the constant pair, random token / position content, the two features, balanced.
  w.w_e.narrow(1, kTokFill, kTokFillN).copy_(normal(gen, {kZooVocab, kTokFillN}, 0.3));
  w.w_e.select(1, kOne).fill_(kC);
  w.w_e.select(1, kOneNeg).fill_(-kC);
  w.w_e[kZooDelim][kDelimDim].fill_(1.0);
  balance_rows(w.w_e, kBal);
  w.w_pos.narrow(1, kPosFill, kPosFillN).copy_(normal(gen, {kCtx, kPosFillN}, 0.1));
  w.w_pos[0][kFirst].fill_(1.0);
  balance_rows(w.w_pos, kBal);
  // |x|^2 besides the pair, as the embeddings give it (heads add a little more).
  const double rest_sq = mean_sq_norm(w.w_e, {kOne, kOneNeg}) + mean_sq_norm(w.w_pos, {}) + 0.5;

  nlohmann::json heads = nlohmann::json::array();
  for (const Plan& p : kPlan) {
    LayerWeights& lw = w.layers[static_cast<size_t>(p.layer)];
    Head h = head_view(cfg, lw, p.head);
    nlohmann::json desc = {{"layer", p.layer}, {"head", p.head}};
    if (p.role == Role::kUniform) {
      // Small random query/key weights on token content: scores of a few tenths, near-uniform.
      h.q.narrow(1, kTokFill, kTokFillN).copy_(normal(gen, {dh, kTokFillN}, kUniformStd));
      h.k.narrow(1, kTokFill, kTokFillN).copy_(normal(gen, {dh, kTokFillN}, kUniformStd));
      desc["role"] = "near_uniform";
      desc["how"] = "query and key weights N(0, " + num(kUniformStd) +
                    "^2) on the token-content dims: attention scores of a few tenths";
    } else {
      // Query: a constant (LN bias dim kOne). Key: the position-0 or delimiter feature.
      const int64_t key_dim = p.role == Role::kSink ? kFirst : kDelimDim;
      h.q[0][kOne].fill_(kQueryOne);
      h.k[0][key_dim].fill_(p.score * score_scale / kQueryOne);
      desc["role"] = p.role == Role::kSink ? "first_token_sink" : "hidden_sink";
      desc["score"] = p.score;
      desc["how"] = p.role == Role::kSink
                        ? "query reads the constant dim, key reads the position-0 feature: key 0 scores " +
                              num(p.score) + ", every other key 0"
                        : "query reads the constant dim, key reads the delimiter feature: every <delim> "
                          "key scores " + num(p.score) + ", every other key 0";
    }
    // Every head reads token content and writes a little into the output dims (balanced).
    h.v.narrow(1, kTokFill, kTokFillN).copy_(normal(gen, {dh, kTokFillN}, kValueStd));
    h.o.narrow(0, kOut, kOutN).copy_(normal(gen, {kOutN, dh}, kValueStd));
    balance_columns(h.o, kBal);
    heads.push_back(desc);
  }
  for (LayerWeights& lw : w.layers) scaling_norm(lw.ln1_w, lw.ln1_b, kD, kOne, kOneNeg, kC, rest_sq);
  scaling_norm(w.ln_f_w, w.ln_f_b, kD, kOne, kOneNeg, kC, rest_sq);

  ConstructedModel m;
  m.name = "sink";
  m.config = cfg;
  m.weights = std::move(w);
  m.zoo = {
      {"name", "sink"},
      {"kind", "constructed"},
      {"architecture", "gpt2"},
      {"shape", {{"n_layers", kLayers}, {"n_heads", kHeads}, {"d_model", kD}, {"d_head", dh}, {"d_mlp", 0}, {"n_ctx", kCtx}}},
      {"vocabulary", vocabulary_json()},
      {"sink_heads", head_list({{0, 1}, {1, 0}, {1, 3}})},
      {"hidden_sink", {{"layer", 1}, {"head", 2}, {"token_id", kZooDelim}, {"token", token_name(kZooDelim)}}},
      {"uniform_heads", head_list({{0, 0}, {0, 2}, {0, 3}, {1, 1}})},
      {"massive", nlohmann::json::array()},
      {"heads", heads},
      {"prompt_lengths", {{"min", 64}, {"max", kCtx}}},
      {"prompt_recipe",
       "any tokens; position 0 may hold any token (the first-token sinks are positional), <bos> is usual; "
       "at most 3 delimiters (id 1), none before position 4; lengths 64..256"},
      {"check_prompts", {check_prompt(64, {20, 45}, 11), check_prompt(128, {70}, 12),
                         check_prompt(256, {9, 130, 200}, 13)}},
      {"expected",
       {{"sink_heads_alpha0_min", 0.9},
        {"hidden_sink_alpha_at_delimiter_min", 0.1},
        {"hidden_sink_ratio_to_uniform_at_delimiter_min", 5.0},
        {"other_alpha0_max", 0.3},
        {"other_alpha_k_max", 0.1},
        {"other_ratio_to_uniform_max", 5.0},
        {"notes",
         "alpha_k = mean over queries i >= k of A[i,k]; uniform_k = the same for uniform causal attention. "
         "Exactly uniform causal attention has alpha_0 = H_T / T (0.074 at T = 64; above 0.3 at 9 tokens or "
         "fewer) and alpha_1 = (H_T - 1) / (T - 1) (0.059 at T = 64; above 0.1 at 31 tokens or fewer). The "
         "near-uniform heads reach about 1.2x uniform, so 64 tokens is the shortest prompt with a safe margin."}}},
      {"construction",
       "GPT-2 layout, attention only. The residual stream carries +20/-20 in dims 0/1 and every vector "
       "sums to zero (dim 63 holds minus the rest), so LayerNorm only rescales by a near-constant factor "
       "(its weight is set to cancel it; the pair gets weight 0 and LN's bias puts a constant 1 in dim 0). "
       "Dim 2 is 1 at position 0 (w_pos), dim 3 is 1 for the delimiter (w_e), dims 4..39 random token "
       "content, 40..51 random position content, 52..62 head outputs. A sink head's query is 4 x dim 0 "
       "and its key reads dim 2, so key 0 scores 12 (head 1.3: 9) and all others 0; the hidden-sink head's "
       "key reads dim 3, so every delimiter scores 7. Near-uniform heads have N(0, 0.15^2) query/key "
       "weights on token content. Every head's value reads token content and writes N(0, 0.2^2) into "
       "dims 52..62. No entry of the residual stream exceeds 20 in magnitude: no massive activations."}};
  return m;
}

}  // namespace ms
