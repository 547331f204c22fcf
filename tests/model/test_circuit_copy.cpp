// Circuit methods on the constructed `copy` model, whose induction circuit is known by design:
// head 0.0 writes the previous token, head 1.0 matches it through its key input and copies the
// next token to the logits. Every method must find the edge 0.0 -> 1.0's key input.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/analysis/circuits/circuit_discovery.h"
#include "core/analysis/circuits/patching.h"
#include "core/zoo/zoo_construct.h"

namespace ms {
namespace {

struct CopyFixture : ::testing::Test {
  void SetUp() override {
    ConstructedModel c = build_copy_model();
    model = Model::from_weights(c.config, c.weights).value();
    graph = std::make_unique<CircuitGraph>(model->config());
    TaskOptions o;
    o.name = "induction";
    o.n = 16;
    o.half_len = 8;
    o.bos_id = kZooBos;
    o.vocab_lo = kZooFirstOrdinary;
    o.vocab_hi = kZooVocab;
    task = make_task(o, nullptr, kZooVocab).value();
    runs = run_task(*model, *graph, task);
    key_target = graph->group_of(TargetKind::kK, 1).first + 0;  // head 1.0's key input
    prev_head = graph->head_source(0, 0);
  }
  // Rank (0 = largest) of the edge among all edges by |score|.
  int64_t rank_of(const at::Tensor& scores, int t, int s) {
    double v = std::abs(scores[t][s].item<double>());
    return (scores.abs().nan_to_num(-1.0) > v).sum().item<int64_t>();
  }
  std::unique_ptr<Model> model;
  std::unique_ptr<CircuitGraph> graph;
  TaskPairs task;
  TaskRuns runs;
  int key_target = 0, prev_head = 0;
};

TEST_F(CopyFixture, TheTaskWorks) {
  EXPECT_GT(runs.metric_clean, 5.0);
  EXPECT_LT(std::abs(runs.metric_corrupted), 1.0);
}

TEST_F(CopyFixture, EapAndEapIgFindThePreviousTokenToKeyEdge) {
  for (int steps : {0, 5}) {
    EdgeScores e = edge_attribution(*model, *graph, task, runs, steps);
    int64_t r = rank_of(e.scores, key_target, prev_head);
    std::printf("%s: rank of a0.0 -> a1.0<k> = %lld, score %.4f\n", e.method.c_str(), static_cast<long long>(r),
                e.scores[key_target][prev_head].item<double>());
    EXPECT_LT(r, 5) << e.method;
    at::Tensor kept = select_top_n(*graph, e.scores, 10);
    EXPECT_TRUE(kept[key_target][prev_head].item<bool>());
    Faithfulness f = evaluate_circuit(*model, *graph, task, runs, kept);
    std::printf("%s top-10 circuit: faithfulness %.4f (%lld edges, %lld nodes)\n", e.method.c_str(), f.faithfulness,
                static_cast<long long>(f.n_edges), static_cast<long long>(f.n_nodes));
    EXPECT_GT(f.faithfulness, 0.8) << e.method;
  }
}

TEST_F(CopyFixture, AcdcKeepsThePreviousTokenToKeyEdge) {
  AcdcOptions o;
  o.tau = 0.05;
  AcdcResult r = acdc(*model, *graph, task, runs, o);
  at::Tensor kept = prune_dangling(*graph, r.kept);
  std::printf("acdc: %lld of %lld edges kept after %lld tests\n", static_cast<long long>(kept.sum().item<int64_t>()),
              static_cast<long long>(graph->n_edges()), static_cast<long long>(r.n_tested));
  EXPECT_TRUE(kept[key_target][prev_head].item<bool>());
  Faithfulness f = evaluate_circuit(*model, *graph, task, runs, kept);
  std::printf("acdc circuit: faithfulness %.4f\n", f.faithfulness);
  EXPECT_GT(f.faithfulness, 0.8);
  EXPECT_LT(kept.sum().item<int64_t>(), graph->n_edges() / 2);
}

TEST_F(CopyFixture, PathPatchingPatchingAndDlaPointAtTheCircuit) {
  at::Tensor pp = path_patching(*model, *graph, task, runs, {key_target});
  // Only layer-0 heads are upstream; 0.0 has by far the largest effect (normalised 1 = none).
  at::Tensor effect = (pp[0] - 1.0).abs();
  EXPECT_EQ(effect.argmax().item<int64_t>(), 0);
  EXPECT_GT(effect[0].item<double>(), 0.5);
  PatchOptions po;
  po.what = "z";
  PatchGrid z = activation_patching(*model, task, po).value();
  EXPECT_GT(z.values[1][0].item<double>(), 0.8);
  DlaResult dla = direct_logit_attribution(*model, task);
  EXPECT_EQ(dla.per_head.view(-1).argmax().item<int64_t>(), 4);  // head 1.0
}

}  // namespace
}  // namespace ms
