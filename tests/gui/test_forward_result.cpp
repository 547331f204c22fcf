// The workbench's forward pass (views/forward_result.h) on the constructed sink model: first-token
// mass per head against the heads planted by construction, the logit lens's last layer against
// the model's own prediction, and head ablation (hook_z zeroed) against the same head removed
// from the weights (w_o columns zeroed) in a separate model.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "core/analysis/sinks/sinks.h"
#include "core/zoo/zoo_construct.h"
#include "views/forward_result.h"

namespace {
using namespace ms;
using namespace ms::views;

std::vector<int32_t> kIds = {0, 5, 9, 13, 1, 17, 21, 25, 29, 1, 33, 37, 41, 45};

std::unique_ptr<Model> sink_model(ConstructedModel* keep = nullptr) {
  Result<ConstructedModel> c = build_constructed_model("sink");
  EXPECT_TRUE(c.ok());
  if (keep) *keep = *c;
  auto m = Model::from_weights(c->config, c->weights);
  EXPECT_TRUE(m.ok()) << m.error().message;
  return std::move(m.value());
}

TEST(ForwardResult, FirstTokenMassFindsThePlantedSinkHeads) {
  auto m = sink_model();
  ForwardRequest req;
  req.ids = kIds;
  ForwardResult r = compute_forward(*m, req);
  ASSERT_EQ(r.first_mass.size(), 8u);
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h) {
      bool sink = (l == 0 && h == 1) || (l == 1 && h == 0) || (l == 1 && h == 3);
      double v = r.first_mass[l * 4 + h];
      if (sink) EXPECT_GT(v, 0.9) << l << "." << h;
      else EXPECT_LT(v, 0.3) << l << "." << h;
    }
  // Every kept pattern row sums to one over the visible keys; future keys are NaN.
  auto p = r.pattern(1, 2);
  ASSERT_TRUE(p);
  for (int q = 0; q < 14; ++q) {
    double s = 0;
    for (int k = 0; k <= q; ++k) s += (*p)[q * 14 + k];
    EXPECT_NEAR(s, 1.0, 1e-5);
    if (q + 1 < 14) {
      EXPECT_TRUE(std::isnan((*p)[q * 14 + q + 1]));
    }
  }
}

TEST(ForwardResult, LogitLensLastLayerIsTheModelsOwnPrediction) {
  auto m = sink_model();
  ForwardRequest req;
  req.ids = kIds;
  ForwardResult r = compute_forward(*m, req);
  ASSERT_EQ(r.lens.size(), 2u * 14u);
  // Full logits through the model's own final norm and unembedding.
  at::Tensor logits = m->forward(m->tokens_tensor(kIds));  // (1, pos, vocab)
  at::Tensor probs = at::softmax(logits[0], -1);
  for (int t = 0; t < 14; ++t) {
    const LensCell& c = r.lens[1 * 14 + t];
    EXPECT_EQ(c.id, probs[t].argmax().item<int64_t>()) << "position " << t;
    EXPECT_NEAR(c.prob, probs[t].max().item<float>(), 1e-5) << "position " << t;
  }
  EXPECT_EQ(r.top[0].id, r.lens[1 * 14 + 13].id);
}

TEST(ForwardResult, AblatingAHeadEqualsRemovingItsOutputWeights) {
  ConstructedModel c;
  auto m = sink_model(&c);
  ForwardRequest req;
  req.ids = kIds;
  req.ablate = {{1, 0}, {0, 1}};
  ForwardResult r = compute_forward(*m, req);
  // Reference: the same heads cut out of w_o ([d_model, q_dim], head h = columns h*d_head..).
  ModelWeights w = c.weights;
  for (auto [l, h] : req.ablate) {
    w.layers[l].w_o = w.layers[l].w_o.clone();
    w.layers[l].w_o.narrow(1, h * c.config.d_head, c.config.d_head).zero_();
  }
  auto ref = Model::from_weights(c.config, w);
  ASSERT_TRUE(ref.ok());
  at::Tensor p = at::softmax((*ref)->forward((*ref)->tokens_tensor(kIds))[0][13], 0);
  ASSERT_EQ(r.top_prob_ablated.size(), r.top.size());
  double worst = 0;
  for (size_t i = 0; i < r.top.size(); ++i)
    worst = std::max(worst, std::abs(r.top_prob_ablated[i] - p[r.top[i].id].item<double>()));
  std::printf("max |p_ablated - p_reference| = %.3g\n", worst);
  EXPECT_LT(worst, 1e-5);
  EXPECT_EQ(r.top_ablated[0].id, p.argmax().item<int64_t>());
  // And the ablation changes something: the clean and ablated distributions differ.
  double change = 0;
  for (size_t i = 0; i < r.top.size(); ++i) change = std::max(change, std::abs(r.top_prob_ablated[i] - r.top[i].prob));
  EXPECT_GT(change, 1e-3);
}

TEST(ForwardResult, CalibrationFindsThePlantedHiddenSinksAndMatchesACT) {
  // Head 1.2 is a hidden sink on <delim> (id 1, positions 4 and 9 of the prompt) by construction.
  auto m = sink_model();
  ForwardRequest req;
  req.ids = kIds;
  req.calibrate = {{1, 2}};
  req.beta = 0.4;
  ForwardResult r = compute_forward(*m, req);
  EXPECT_NE(r.intervention.find("hidden sinks at 4,9"), std::string::npos) << r.intervention;
  SinkCalibration calib({{1, 2}}, {4, 9}, 0.4);
  ForwardOptions o;
  o.attention = &calib;
  at::Tensor p = at::softmax(m->forward(m->tokens_tensor(kIds), o)[0][13], 0);
  double worst = 0, change = 0;
  for (size_t i = 0; i < r.top.size(); ++i) {
    worst = std::max(worst, std::abs(r.top_prob_ablated[i] - p[r.top[i].id].item<double>()));
    change = std::max(change, std::abs(r.top_prob_ablated[i] - r.top[i].prob));
  }
  EXPECT_LT(worst, 1e-6);
  EXPECT_GT(change, 1e-4);
  // beta = 1 leaves the model unchanged.
  req.beta = 1.0;
  ForwardResult same = compute_forward(*m, req);
  for (size_t i = 0; i < same.top.size(); ++i) EXPECT_NEAR(same.top_prob_ablated[i], same.top[i].prob, 1e-6);
}

}  // namespace
