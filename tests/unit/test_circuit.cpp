// Circuit analysis on tiny random models: the edge graph, the edge-level forward pass against
// the plain one, EAP against exact edge patching (and its small-delta limit), EAP-IG, ACDC,
// faithfulness limits, activation patching (self-patch = 1), path patching, DLA sums.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/analysis/circuits/circuit_discovery.h"
#include "core/analysis/circuits/patching.h"
#include "core/zoo/zoo_random.h"
#include "tests/support/numerics.h"
#include "tests/support/tiny_models.h"

namespace ms {
namespace {

TaskPairs induction_task(int64_t n = 8, int64_t half = 5, uint64_t seed = 3) {
  TaskOptions o;
  o.name = "induction";
  o.n = n;
  o.half_len = half;
  o.seed = seed;
  Result<TaskPairs> t = make_task(o, nullptr, 50);
  EXPECT_TRUE(t.ok()) << t.error().message;
  return *t;
}

TEST(CircuitGraph, Shapes) {
  auto m = test::tiny_model("gpt2");
  CircuitGraph g(m->config());
  EXPECT_EQ(g.n_sources(), 1 + 3 * 5);
  EXPECT_EQ(g.n_targets(), 3 * 13 + 1);
  EXPECT_EQ(g.targets()[0].n_upstream, 1);
  EXPECT_EQ(g.group_of(TargetKind::kMlp, 1).count, 1);
  EXPECT_EQ(g.targets()[static_cast<size_t>(g.group_of(TargetKind::kMlp, 1).first)].n_upstream, 1 + 5 + 4);
  EXPECT_EQ(g.targets().back().n_upstream, g.n_sources());
  auto llama = test::tiny_model("llama");
  CircuitGraph gl(llama->config());
  EXPECT_EQ(gl.group_of(TargetKind::kK, 0).count, 2);  // KV heads
  EXPECT_EQ(gl.group_of(TargetKind::kQ, 0).count, 4);
  auto neox = test::tiny_model("neox");  // parallel: the MLP does not see its own layer's heads
  CircuitGraph gn(neox->config());
  EXPECT_EQ(gn.targets()[static_cast<size_t>(gn.group_of(TargetKind::kMlp, 1).first)].n_upstream, 1 + 5);
}

TEST(CircuitGraph, EdgeForwardWithZeroOffsetsIsTheForwardPass) {
  at::NoGradGuard ng;
  for (const char* fam : {"gpt2", "neox", "llama", "mistral", "attn_only", "qwen3", "phi3", "olmo2", "gemma2", "gemma3"}) {
    auto m = test::tiny_model(fam);
    CircuitGraph g(m->config());
    TaskPairs t = induction_task();
    at::Tensor ref = m->forward(t.clean);
    EdgeRunOptions o;
    o.offsets = [&](const TargetGroup& grp, const std::vector<at::Tensor>&) {
      const int64_t B = t.n(), T = t.seq_len(), d = m->config().d_model;
      return grp.kind == TargetKind::kMlp || grp.kind == TargetKind::kLogits ? at::zeros({B, T, d})
                                                                              : at::zeros({B, T, grp.count, d});
    };
    // The residual stream as a sum of source outputs: the same float32 terms in another order.
    EXPECT_TRUE(test::close_rel(std::string(fam) + " edge forward", run_edge_forward(*m, g, t.clean, o), ref, test::kReorderTol));
    // Source outputs add up to the residual stream: all edges removed gives the corrupted run.
    // The metric is a difference of logits, so its rounding is relative to the logits' scale.
    TaskRuns runs = run_task(*m, g, t);
    const double logits = ref.abs().max().item<double>();
    EXPECT_TRUE(test::close_rel(std::string(fam) + " all edges patched", patched_metric(*m, g, t, runs, all_edges(g).to(at::kFloat)),
                                runs.metric_corrupted, test::kReorderTol, logits));
    EXPECT_TRUE(test::close_rel(std::string(fam) + " no edge patched", patched_metric(*m, g, t, runs, at::zeros({g.n_targets(), g.n_sources()})),
                                runs.metric_clean, test::kReorderTol, logits));
  }
}

// EAP is the first-order term of exact edge patching: with the corrupted outputs moved towards
// the clean ones by alpha, exact / alpha tends to the EAP score.
TEST(CircuitEap, SmallDeltaLimitMatchesExactPatching) {
  for (const char* fam : {"gpt2", "llama", "neox", "olmo2", "gemma2"}) {
    auto m = test::tiny_model(fam);
    CircuitGraph g(m->config());
    TaskPairs t = induction_task();
    TaskRuns runs = run_task(*m, g, t);
    EdgeScores eap = edge_attribution(*m, g, t, runs);
    const double alpha = 1e-3;
    TaskRuns near = runs;
    near.corrupted_out = runs.clean_out + alpha * (runs.corrupted_out - runs.clean_out);
    std::vector<std::pair<int, int>> edges;
    for (auto e : g.edges())
      if (e.first % 3 == 0) edges.push_back(e);
    EdgeScores ex = exact_edge_patching(*m, g, t, near, edges);
    double worst = 0, scale = eap.scores.nan_to_num(0).abs().max().item<double>();
    for (auto [tt, s] : edges)
      worst = std::max(worst, std::abs(ex.scores[tt][s].item<double>() / alpha - eap.scores[tt][s].item<double>()));
    EXPECT_LT(worst, 2e-2 * scale) << fam << ": worst " << worst << " of scale " << scale;
  }
}

TEST(CircuitEap, RankCorrelationWithExactPatching) {
  // A near-linear model: small weights.
  ModelConfig c = test::tiny_config("gpt2");
  auto m = Model::from_weights(c, random_weights(c, 5, 0.1)).value();
  CircuitGraph g(c);
  TaskPairs t = induction_task(16);
  TaskRuns runs = run_task(*m, g, t);
  EdgeScores eap = edge_attribution(*m, g, t, runs);
  EdgeScores ex = exact_edge_patching(*m, g, t, runs);
  std::vector<double> a, b;
  for (auto [tt, s] : g.edges()) a.push_back(eap.scores[tt][s].item<double>()), b.push_back(ex.scores[tt][s].item<double>());
  double rho = spearman(a, b);
  std::printf("EAP vs exact edge patching: Spearman %.4f over %zu edges\n", rho, a.size());
  EXPECT_GT(rho, 0.8);
  // Without the clean outputs EAP takes them from its own gradient pass: the same scores.
  TaskRuns corrupted_only;
  corrupted_only.corrupted_out = runs.corrupted_out;
  EXPECT_TRUE(test::close_rel("EAP, clean outputs from its own pass", edge_attribution(*m, g, t, corrupted_only).scores.nan_to_num(0),
                              eap.scores.nan_to_num(0), test::kReorderTol));
  // EAP-IG with one step evaluates the gradient at the clean input: EAP itself.
  EdgeScores ig1 = edge_attribution(*m, g, t, runs, 1);
  EXPECT_TRUE(test::close_rel("EAP-IG with one step", ig1.scores.nan_to_num(0), eap.scores.nan_to_num(0), test::kReorderTol));
  EdgeScores ig5 = edge_attribution(*m, g, t, runs, 5);
  std::vector<double> c5;
  for (auto [tt, s] : g.edges()) c5.push_back(ig5.scores[tt][s].item<double>());
  std::printf("EAP-IG (m=5) vs exact: Spearman %.4f\n", spearman(c5, b));
  EXPECT_GT(spearman(c5, b), 0.8);
}

TEST(CircuitSelection, TopNAndFaithfulnessLimits) {
  auto m = test::tiny_model("gpt2");
  CircuitGraph g(m->config());
  TaskPairs t = induction_task();
  TaskRuns runs = run_task(*m, g, t);
  EdgeScores eap = edge_attribution(*m, g, t, runs);
  at::Tensor top = select_top_n(g, eap.scores, 10);
  EXPECT_LE(top.sum().item<int64_t>(), 10);
  Faithfulness full = evaluate_circuit(*m, g, t, runs, all_edges(g));
  // Ratios of metrics: their rounding is the logits' (kReorderTol of their scale) over the
  // denominator (metric_clean, or clean - corrupted).
  const double logits = runs.clean_logits.abs().max().item<double>();
  EXPECT_TRUE(test::close_rel("full circuit faithfulness", full.faithfulness, 1.0, test::kReorderTol,
                              logits / std::abs(runs.metric_clean)));
  Faithfulness empty = evaluate_circuit(*m, g, t, runs, at::zeros({g.n_targets(), g.n_sources()}, at::kBool));
  EXPECT_TRUE(test::close_rel("empty circuit normalized", empty.normalized, 0.0, test::kReorderTol,
                              logits / std::abs(runs.metric_clean - runs.metric_corrupted)));
  EXPECT_EQ(empty.n_nodes, 0);
}

TEST(CircuitAcdc, TauLimitsAndConsistentLoss) {
  auto m = test::tiny_model("attn_only");
  CircuitGraph g(m->config());
  TaskPairs t = induction_task();
  TaskRuns runs = run_task(*m, g, t);
  AcdcOptions o;
  o.tau = 1e9;
  AcdcResult all_gone = acdc(*m, g, t, runs, o);
  EXPECT_EQ(all_gone.kept.sum().item<int64_t>(), 0);
  o.tau = 0.02;
  AcdcResult r = acdc(*m, g, t, runs, o);
  EXPECT_GT(r.n_tested, 0);
  // The loss ACDC ends with is the KL of the circuit it keeps.
  at::Tensor removed = all_edges(g).logical_and(r.kept.logical_not()).to(at::kFloat);
  EdgeRunOptions eo;
  eo.offsets = patch_edges_offsets(g, removed, runs.corrupted_out);
  at::NoGradGuard ng;
  double kl = kl_to_reference(t, answer_log_probs(t, runs.clean_logits), run_edge_forward(*m, g, t.clean, eo)).item<double>();
  // The same KL recomputed: float32 rounding of the log-probabilities, relative to the logits.
  EXPECT_TRUE(test::close_rel("ACDC final loss", kl, r.final_loss, test::kReorderTol,
                              runs.clean_logits.abs().max().item<double>()));
  EXPECT_LT(r.final_loss, 0.02 * static_cast<double>(r.n_tested) + 1e-6);
}

TEST(ActivationPatching, SelfPatchScoresOneAndUnchangedPositionsZero) {
  for (const char* fam : {"gpt2", "llama"}) {
    auto m = test::tiny_model(fam);
    TaskPairs t = induction_task();
    const double logits = m->forward(t.clean).abs().max().item<double>();
    for (const char* what : {"resid_pre", "attn_out", "mlp_out", "z", "q", "k", "v", "pattern"}) {
      PatchOptions o;
      o.what = what;
      o.self_patch = true;
      Result<PatchGrid> g = activation_patching(*m, t, o);
      ASSERT_TRUE(g.ok()) << g.error().message;
      // Normalised scores: the logits' rounding over the metric range (clean - corrupted).
      EXPECT_TRUE(test::close_rel(std::string(fam) + " self-patch " + what, g->values, at::ones_like(g->values),
                                  test::kReorderTol, logits / std::abs(g->metric_clean - g->metric_corrupted)));
      const int64_t heads = std::string(what) == "k" || std::string(what) == "v" ? m->config().n_kv_heads : m->config().n_heads;
      if (g->axes[1] == "head") {
        EXPECT_EQ(g->values.size(1), heads) << fam << " " << what;
      }
    }
    PatchOptions o;
    o.what = "resid_pre";
    Result<PatchGrid> g = activation_patching(*m, t, o);
    ASSERT_TRUE(g.ok());
    // Positions where clean and corrupted agree for every pair: patching layer 0 there is a no-op.
    at::Tensor same = (t.clean == t.corrupted).all(0);
    for (int64_t p = 0; p < t.seq_len(); ++p)
      if (same[p].item<bool>()) {
        EXPECT_TRUE(test::close_rel(std::string(fam) + " no-op patch at " + std::to_string(p), g->values[0][p].item<double>(), 0.0,
                                    test::kReorderTol, logits / std::abs(g->metric_clean - g->metric_corrupted)));
      }
  }
}

TEST(PathPatching, AgreesWithExactEdgePatchingIntoLogits) {
  auto m = test::tiny_model("gpt2");
  CircuitGraph g(m->config());
  TaskPairs t = induction_task();
  TaskRuns runs = run_task(*m, g, t);
  at::Tensor pp = path_patching(*m, g, t, runs, {g.n_targets() - 1});
  std::vector<std::pair<int, int>> edges;
  for (int l = 0; l < 3; ++l)
    for (int h = 0; h < 4; ++h) edges.push_back({g.n_targets() - 1, g.head_source(l, h)});
  EdgeScores ex = exact_edge_patching(*m, g, t, runs, edges);
  for (int l = 0; l < 3; ++l)
    for (int h = 0; h < 4; ++h) {
      double m_patch = runs.metric_clean + ex.scores[g.n_targets() - 1][g.head_source(l, h)].item<double>();
      const double range = runs.metric_clean - runs.metric_corrupted;
      EXPECT_TRUE(test::close_rel("path patching " + std::to_string(l) + "." + std::to_string(h), pp[l][h].item<double>(),
                                  (m_patch - runs.metric_corrupted) / range, test::kReorderTol,
                                  runs.clean_logits.abs().max().item<double>() / std::abs(range)));
    }
}

TEST(Dla, ComponentsSumToTheLogitDifference) {
  // OLMo 2 and Gemma: heads through the post-norm with its scale frozen; Gemma 2's logit_diff is
  // before the final soft-cap (the attributions are linear in those logits).
  for (const char* fam : {"gpt2", "llama", "neox", "olmo2", "gemma2", "gemma3"}) {
    auto m = test::tiny_model(fam);
    TaskPairs t = induction_task();
    DlaResult r = direct_logit_attribution(*m, t);
    double sum = r.bias_terms;
    for (double x : r.per_component) sum += x;
    EXPECT_NEAR(sum, r.logit_diff, 1e-4 * std::max(1.0, std::abs(r.logit_diff))) << fam;
    if (!m->config().o_bias) {  // heads add up to their layer's attention output
      for (int64_t l = 0; l < m->config().n_layers; ++l) {
        size_t ci = 0;
        while (r.components[ci] != "attn" + std::to_string(l)) ++ci;
        EXPECT_TRUE(test::close_rel(std::string(fam) + " heads of layer " + std::to_string(l), r.per_head[l].sum().item<double>(),
                                    r.per_component[ci], test::kReorderTol, r.per_head[l].abs().sum().item<double>()));
      }
    }
  }
}

}  // namespace
}  // namespace ms
