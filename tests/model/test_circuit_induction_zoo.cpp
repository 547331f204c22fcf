// Circuit methods on the trained `induction` zoo model (issue 3): the detectors find its
// previous-token head in layer 0 and its induction head in layer 1; EAP, EAP-IG and ACDC all
// recover the edge from the previous-token head into the induction head's key input, and the
// selected circuits keep over 80% of the full model's metric.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "core/analysis/circuits/circuit_discovery.h"
#include "core/analysis/heads/head_detectors.h"
#include "core/zoo/zoo_tasks.h"
#include "core/zoo/zoo_trained.h"
#include "tests/support/test_support.h"
#include "tests/support/zoo_fixture.h"

namespace ms {
namespace {

TEST(CircuitInductionZoo, MethodsRecoverThePreviousTokenToKeyEdge) {
  std::unique_ptr<Model> model = Model::load(test::induction_zoo_dir()).value();  // CI size, as the zoo's own test

  // Detectors (TransformerLens semantics) on repeated random tokens.
  TaskRng rng(99);
  const int64_t half = std::min<int64_t>(16, (model->config().n_ctx - 1) / 2);
  at::Tensor probe = repeated_random_tokens(32, half, 1, 127, kAsciiBos, rng);
  at::Tensor prev = detect_heads(*model, probe, HeadPattern::kPreviousToken).value();
  at::Tensor ind = detect_heads(*model, probe, HeadPattern::kInduction, {true, false, ErrorMeasure::kMul}).value();
  const int prev_head = static_cast<int>(prev[0].argmax().item<int64_t>());
  const int ind_head = static_cast<int>(ind[1].argmax().item<int64_t>());
  std::printf("previous-token head 0.%d (%.3f), induction head 1.%d (%.3f)\n", prev_head,
              prev[0][prev_head].item<double>(), ind_head, ind[1][ind_head].item<double>());
  EXPECT_GT(prev[0][prev_head].item<double>(), 0.4);
  EXPECT_GT(ind[1][ind_head].item<double>(), 0.5);

  TaskOptions o;
  o.name = "induction";
  o.n = 24;
  o.half_len = half;
  o.bos_id = kAsciiBos;
  o.vocab_lo = 1;
  o.vocab_hi = 128;
  TaskPairs task = make_task(o, nullptr, model->config().d_vocab).value();
  CircuitGraph g(model->config());
  TaskRuns runs = run_task(*model, g, task);
  std::printf("metric clean %.3f, corrupted %.3f\n", runs.metric_clean, runs.metric_corrupted);
  ASSERT_GT(runs.metric_clean, runs.metric_corrupted + 1.0);
  const int key = g.group_of(TargetKind::kK, 1).first +
                  ind_head / static_cast<int>(model->config().n_heads / model->config().n_kv_heads);
  const int src = g.head_source(0, prev_head);
  // Circuits of the n edges with the largest |score|; the faithfulness curve is printed.
  for (int steps : {0, 5}) {
    EdgeScores e = edge_attribution(*model, g, task, runs, steps);
    double best_small = 0;
    for (int64_t n : {10, 20, 30, 40}) {
      at::Tensor kept = select_top_n(g, e.scores, n);
      Faithfulness f = evaluate_circuit(*model, g, task, runs, kept);
      std::printf("%s top-%lld: faithfulness %.3f (%lld edges, %lld nodes), edge kept %d\n", e.method.c_str(),
                  static_cast<long long>(n), f.faithfulness, static_cast<long long>(f.n_edges),
                  static_cast<long long>(f.n_nodes), kept[key][src].item<bool>() ? 1 : 0);
      if (n == 20) {
        EXPECT_TRUE(kept[key][src].item<bool>()) << e.method;
      }
      if (n <= 30) best_small = std::max(best_small, f.faithfulness);
    }
    std::printf("%s: edge score %.4f\n", e.method.c_str(), e.scores[key][src].item<double>());
    EXPECT_GT(best_small, 0.8) << e.method << ": no circuit of at most 30 edges keeps 80% of the metric";
  }
  AcdcOptions ao;
  ao.tau = 0.02;
  AcdcResult a = acdc(*model, g, task, runs, ao);
  at::Tensor kept = prune_dangling(g, a.kept);
  Faithfulness f = evaluate_circuit(*model, g, task, runs, kept);
  std::printf("acdc: %lld of %lld edges, faithfulness %.3f\n", static_cast<long long>(kept.sum().item<int64_t>()),
              static_cast<long long>(g.n_edges()), f.faithfulness);
  EXPECT_TRUE(kept[key][src].item<bool>());
  EXPECT_GT(f.faithfulness, 0.8);
}

}  // namespace
}  // namespace ms
