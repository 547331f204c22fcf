// The `massive` constructed model: layer 0's MLP writes massive activations (about +400 and -200,
// thousands of times the median entry) into two fixed residual dims at <bos> and <delim>, layer 2's
// MLP removes them again, as Sun et al. describe for real LLMs; everything else stays small.
#include <cmath>

#include "core/zoo/zoo_construct.h"
#include "core/zoo/zoo_construct_common.h"

namespace ms {
namespace {

// Residual layout (d_model 64): the constant pair, the special-token flag, two massive dims, the
// balance dim, and random content (std 0.1 per token, 0.03 per position) in all other dims.
constexpr int64_t kD = 64, kHeads = 4, kLayers = 3, kMlp = 32;
constexpr int64_t kOne = 0, kOneNeg = 1, kSpecial = 2, kMassA = 21, kMassB = 45, kBal = 63;
constexpr double kC = 10.0;
constexpr double kValueA = 400.0, kValueB = -200.0;
constexpr double kGate = 6.0;  // the writer neuron's pre-activation: 12 * flag - 6, +6 at special tokens
constexpr double kStd = 0.1;   // random attention and MLP weights on the content dims
constexpr uint64_t kSeed = 2002;

}  // namespace

ConstructedModel build_massive_model() {
  using namespace construct;
  ModelConfig cfg = gpt2_config(kLayers, kD, kHeads, kMlp, /*tied=*/true);
  ModelWeights w = zero_weights(cfg);
  at::Generator gen = at::detail::createCPUGenerator(kSeed);
  const int64_t dh = cfg.d_head;
  at::Tensor content = at::ones({kD});  // 1 on the random-content dims
  for (int64_t d : {kOne, kOneNeg, kSpecial, kMassA, kMassB, kBal}) content[d].fill_(0.0);

  w.w_e.copy_(normal(gen, {kZooVocab, kD}, 0.1) * content);
  w.w_e.select(1, kOne).fill_(kC);
  w.w_e.select(1, kOneNeg).fill_(-kC);
  w.w_e[kZooBos][kSpecial].fill_(1.0);
  w.w_e[kZooDelim][kSpecial].fill_(1.0);
  balance_rows(w.w_e, kBal);
  w.w_pos.copy_(normal(gen, {kCtx, kD}, 0.03) * content);
  balance_rows(w.w_pos, kBal);
  const double pos_sq = mean_sq_norm(w.w_pos, {});
  const double rest_sq = mean_sq_norm(w.w_e, {kOne, kOneNeg}) + pos_sq;
  // The writer reads the flag through layer 0's ln2, scaled for the special tokens themselves.
  const double special_sq = mean_sq_norm(w.w_e.narrow(0, 0, 2), {kOne, kOneNeg}) + pos_sq;

  // Small random heads and MLP neurons on the content dims only; neuron 0 is reserved.
  for (LayerWeights& lw : w.layers) {
    for (int64_t h = 0; h < kHeads; ++h) {
      Head hv = head_view(cfg, lw, h);
      hv.q.copy_(normal(gen, {dh, kD}, kStd) * content);
      hv.k.copy_(normal(gen, {dh, kD}, kStd) * content);
      hv.v.copy_(normal(gen, {dh, kD}, kStd) * content);
      hv.o.copy_(normal(gen, {kD, dh}, kStd) * content.unsqueeze(1));
      balance_columns(hv.o, kBal);
    }
    lw.w_in.copy_(normal(gen, {kMlp, kD}, kStd) * content);
    lw.w_out.copy_(normal(gen, {kD, kMlp}, kStd) * content.unsqueeze(1));
    balance_columns(lw.w_out, kBal);
    lw.w_in[0].zero_();
    lw.w_out.select(1, 0).zero_();
    scaling_norm(lw.ln1_w, lw.ln1_b, kD, kOne, kOneNeg, kC, rest_sq);
    scaling_norm(lw.ln2_w, lw.ln2_b, kD, kOne, kOneNeg, kC, rest_sq);
  }
  scaling_norm(w.ln_f_w, w.ln_f_b, kD, kOne, kOneNeg, kC, rest_sq);

  // Writer: layer 0, neuron 0 fires (pre-activation +6) on the flag and writes kValueA / kValueB.
  LayerWeights& l0 = w.layers[0];
  scaling_norm(l0.ln2_w, l0.ln2_b, kD, kOne, kOneNeg, kC, special_sq);
  l0.w_in[0][kSpecial].fill_(2.0 * kGate);
  l0.b_in[0].fill_(-kGate);
  l0.w_out[kMassA][0].fill_(kValueA / kGate);
  l0.w_out[kMassB][0].fill_(kValueB / kGate);

  // Remover: layer 2, neuron 0 reads ln2(x)[A] - ln2(x)[B], which LayerNorm makes the same at every
  // massive position (diff below) and about 0 elsewhere; it fires at +diff/2 and writes -values.
  LayerWeights& l2 = w.layers[2];
  const double ln_w = l2.ln2_w[kSpecial].item<double>();
  const double mean = (kValueA + kValueB) / kD;
  const double sq = kValueA * kValueA + kValueB * kValueB + 2 * kC * kC + rest_sq;
  const double sigma = std::sqrt(sq / kD - mean * mean);
  const double diff = ln_w * (kValueA - kValueB) / sigma;
  l2.w_in[0][kMassA].fill_(1.0);
  l2.w_in[0][kMassB].fill_(-1.0);
  l2.b_in[0].fill_(-diff / 2);
  l2.w_out[kMassA][0].fill_(-kValueA / (diff / 2));
  l2.w_out[kMassB][0].fill_(-kValueB / (diff / 2));

  nlohmann::json massive = nlohmann::json::array();
  for (int32_t tok : {kZooBos, kZooDelim})
    for (auto [dim, value] : {std::pair<int64_t, double>{kMassA, kValueA}, {kMassB, kValueB}})
      massive.push_back({{"dim", dim}, {"token_id", tok}, {"token", token_name(tok)}, {"value", value},
                         {"layers", {0, 1}}});

  ConstructedModel m;
  m.name = "massive";
  m.config = cfg;
  m.weights = std::move(w);
  m.zoo = {
      {"name", "massive"},
      {"kind", "constructed"},
      {"architecture", "gpt2"},
      {"shape", {{"n_layers", kLayers}, {"n_heads", kHeads}, {"d_model", kD}, {"d_head", dh}, {"d_mlp", kMlp}, {"n_ctx", kCtx}}},
      {"vocabulary", vocabulary_json()},
      {"massive", massive},
      {"massive_hooks",
       {{"present", {"blocks.0.hook_resid_post", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post",
                     "blocks.2.hook_resid_pre"}},
        {"absent", {"blocks.0.hook_resid_pre", "blocks.2.hook_resid_post"}},
        {"layers_means", "an entry's \"layers\" lists L for blocks.L.hook_resid_post (= blocks.L+1.hook_resid_pre)"}}},
      {"value_tolerance", 0.02},
      {"writer", {{"layer", 0}, {"mlp_neuron", 0}}},
      {"remover", {{"layer", 2}, {"mlp_neuron", 0}}},
      {"sink_heads", nlohmann::json::array()},
      {"hidden_sink", nullptr},
      {"prompt_lengths", {{"min", 1}, {"max", kCtx}}},
      {"prompt_recipe", "any tokens; every <bos> (id 0) and <delim> (id 1) gets the massive values"},
      {"check_prompts", {check_prompt(64, {20, 45}, 21), check_prompt(128, {70}, 22)}},
      {"expected",
       {{"massive_abs_min", 100.0},
        {"massive_ratio_to_median_min", 1000.0},
        {"notes", "median |h| of a hidden state is 0.07 to 0.08; the largest other entry is the constant "
                  "pair (10), and the remover leaves under 2 behind"}}},
      {"construction",
       "GPT-2 layout with MLPs (gelu_new). Residual stream: +10/-10 in dims 0/1 (LayerNorm then only "
       "rescales by a near-constant factor, undone by its weight), dim 2 = 1 for <bos> and <delim>, dims "
       "21 and 45 empty in the embeddings, dim 63 balances every embedding to zero mean, all other dims "
       "random content (N(0, 0.1^2) per token, N(0, 0.03^2) per position). Attention heads and MLP "
       "neurons 1..31 are random N(0, 0.1^2) on the content dims only. Layer 0 MLP neuron 0: "
       "pre = 12 * ln2(x)[2] - 6 (+6 at <bos>/<delim>, -6 elsewhere), writes 400/6 and -200/6 per unit "
       "into dims 21 and 45. From then on LayerNorm maps every massive position to the same direction; "
       "layer 2 MLP neuron 0 reads ln2(x)[21] - ln2(x)[45] (about 19 there, about 0 elsewhere) with bias "
       "-9.5 and writes -400 / +200 back, leaving under 2."}};
  return m;
}

}  // namespace ms
