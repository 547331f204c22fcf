// The workbench's forward pass (views/forward_result.h) on the constructed sink model: alpha0 per
// head against the heads planted by construction, the logit lens's last layer against the model's
// own prediction, head ablation (hook_z zeroed) against the same head removed from the weights
// (w_o columns zeroed) in a separate model; and, on a sliding-window Mistral, alpha0 and the
// hidden sinks against a brute-force reference from the full patterns and the sinks analysis.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <set>
#include <thread>

#include "core/analysis/sinks/sinks.h"
#include "core/zoo/zoo_construct.h"
#include "core/attention/visibility.h"
#include "core/features/sae.h"
#include "core/tokenizer/token_label.h"
#include "core/tokenizer/tokenizer.h"
#include "hooks/activation_cache.h"
#include "tests/support/numerics.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_models.h"
#include "views/forward_result.h"
#include "views/settings.h"
#include "views/task_manager.h"
#include "views/workbench.h"

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

TEST(ForwardResult, Alpha0FindsThePlantedSinkHeads) {
  auto m = sink_model();
  ForwardRequest req;
  req.ids = kIds;
  ForwardResult r = compute_forward(*m, req);
  ASSERT_EQ(r.alpha0.size(), 8u);
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h) {
      bool sink = (l == 0 && h == 1) || (l == 1 && h == 0) || (l == 1 && h == 3);
      double v = r.alpha0[l * 4 + h];
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
  // The same calibration, so the same probabilities up to float32 reordering: the workbench's pass
  // (which also records patterns and more) and this plain forward order their float32 operations
  // differently; 1.2e-6 apart since the December merge (cause not pinned down), while a calibration
  // that missed moves them by the change below (0.018 here; bound 1e-4).
  std::printf("calibrated vs ACT reference: worst %.3g; change from the clean pass %.3g\n", worst, change);
  EXPECT_LT(worst, 1e-5);
  EXPECT_GT(change, 1e-4);
  // beta = 1 leaves the model unchanged.
  req.beta = 1.0;
  ForwardResult same = compute_forward(*m, req);
  for (size_t i = 0; i < same.top.size(); ++i) EXPECT_NEAR(same.top_prob_ablated[i], same.top[i].prob, 1e-6);
}

// alpha_k of every (layer, head, key) from the materialised patterns: the mean of A[i, k] over the
// queries i that see key k (visibility.h's scalar rule), in float64.
std::vector<double> brute_force_alpha(const Model& m, const std::vector<int32_t>& ids) {
  const ModelConfig& c = m.config();
  HookRegistry reg;
  ActivationCache cache;
  reg.add_forward("blocks.*.attn.hook_pattern", cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &reg;
  m.forward(m.tokens_tensor(ids), fo);
  const int64_t T = static_cast<int64_t>(ids.size());
  std::vector<double> out;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    at::Tensor a = cache["blocks." + std::to_string(l) + ".attn.hook_pattern"][0].to(at::kDouble);  // (H, T, T)
    for (int64_t h = 0; h < c.n_heads; ++h)
      for (int64_t k = 0; k < T; ++k) {
        double sum = 0;
        int64_t n = 0;
        for (int64_t i = 0; i < T; ++i)
          if (key_visible(i, k, c.sliding_window)) {
            sum += a[h][i][k].item<double>();
            ++n;
          }
        out.push_back(sum / static_cast<double>(n));
      }
  }
  return out;
}

TEST(ForwardResult, SlidingWindowAlphaEqualsTheSinksAnalysis) {
  auto m = test::tiny_model("mistral", 3);  // window 3, 3 layers x 4 heads
  const ModelConfig& c = m->config();
  ASSERT_GT(c.sliding_window, 0);
  std::vector<int32_t> ids = {3, 17, 4, 9, 22, 31, 8, 4, 40, 12, 5, 27};
  const int64_t T = static_cast<int64_t>(ids.size());
  ASSERT_GT(T, 3 * c.sliding_window);
  std::vector<double> ref = brute_force_alpha(*m, ids);
  // Hidden sinks of two heads at a threshold half-way between two neighbouring reference values,
  // so that rounding cannot move a key across it.
  std::vector<double> vals;
  for (int64_t hh : {int64_t(0), int64_t(c.n_heads + 1)})  // heads 0.0 and 1.1
    for (int64_t k = 1; k < T; ++k) vals.push_back(ref[hh * T + k]);
  std::sort(vals.begin(), vals.end());
  double thr = -1;
  for (size_t i = vals.size() / 2; i + 1 < vals.size() && thr < 0; ++i)
    if (vals[i + 1] - vals[i] > 1e-4) thr = 0.5 * (vals[i] + vals[i + 1]);
  ASSERT_GT(thr, 0);
  std::string expect;
  for (int64_t k = 1; k < T; ++k)
    if (ref[k] > thr || ref[(c.n_heads + 1) * T + k] > thr) expect += (expect.empty() ? "" : ",") + std::to_string(k);

  ForwardRequest req;
  req.ids = ids;
  req.calibrate = {{0, 0}, {1, 1}};
  req.calibrate_threshold = thr;
  ForwardResult r = compute_forward(*m, req);
  SinkOptions so;
  so.hidden_threshold = thr;
  SinkReport sinks = analyze_sinks(*m, {ids}, so);
  ASSERT_EQ(r.alpha0.size(), static_cast<size_t>(c.n_layers * c.n_heads));
  double worst_ref = 0, worst_sinks = 0;
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (int64_t h = 0; h < c.n_heads; ++h) {
      double a0 = r.alpha0[static_cast<size_t>(l * c.n_heads + h)];
      worst_ref = std::max(worst_ref, std::abs(a0 - ref[(l * c.n_heads + h) * T]));
      worst_sinks = std::max(worst_sinks, std::abs(a0 - sinks.head_alpha0[l][h].item<double>()));
    }
  std::printf("alpha0: max |gui - brute force| = %.3g, max |gui - sinks| = %.3g\n", worst_ref, worst_sinks);
  EXPECT_LT(worst_ref, 1e-6);  // float32 sums of at most 3 terms
  // The same definition from the same streaming statistics; the sinks analysis reads them from the
  // fused kernel (a read-only observer), the workbench from the materialising path it needs for
  // its patterns: equal to float32 reordering of probabilities <= 1 (tests/unit/test_fused_attention.cpp).
  EXPECT_LE(worst_sinks, test::kReorderTol);
  // Query 0 gives key 0 all its attention and only the window's 3 queries see key 0, so alpha0 is
  // at least 1/3; the old workbench mean over queries 1..T-1 was at most 2/11 here.
  for (double a0 : r.alpha0) EXPECT_GE(a0, 1.0 / 3.0 - 1e-6);
  EXPECT_NE(r.intervention.find("hidden sinks at " + (expect.empty() ? std::string("none") : expect) + ")"),
            std::string::npos)
      << r.intervention << " (expected " << expect << ")";
  std::string from_sinks;
  std::set<int64_t> seen;
  for (const HiddenSink& hs : sinks.hidden)
    if ((hs.layer == 0 && hs.head == 0) || (hs.layer == 1 && hs.head == 1)) seen.insert(hs.position);
  for (int64_t k : seen) from_sinks += (from_sinks.empty() ? "" : ",") + std::to_string(k);
  EXPECT_EQ(from_sinks, expect);
}

}  // namespace

// What the workbench draws for tokens: whitespace made visible (token_display), on the bundled
// default model's byte-level BPE, whose " " and "\n" bytes would otherwise draw as blank chips.
TEST(ForwardResult, TokensAreDrawnWithVisibleWhitespace) {
  auto m = Model::load(ms::test::source_dir() + "/resources/models/default");
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_TRUE((*m)->tokenizer());
  ForwardRequest req;
  req.ids = (*m)->tokenizer()->encode("a cat\n\nsat", false);
  ForwardResult r = compute_forward(**m, req);
  ASSERT_EQ(r.tokens.size(), req.ids.size());
  std::string all;
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    EXPECT_EQ(r.tokens[i], token_display(token_label(**m, req.ids[i])));
    EXPECT_EQ(r.tokens[i].find_first_of(" \n"), std::string::npos) << i;
    all += r.tokens[i];
  }
  EXPECT_EQ(all, "a\u00b7cat\u21b5\u21b5sat");
  for (const Prediction& p : r.top) EXPECT_EQ(p.token.find_first_of(" \n"), std::string::npos) << p.id;
  EXPECT_EQ(r.context_note, "");  // 6 tokens within a context of 128
}

// Opening another model: the previous model's interventions and selected run go, the user's own
// prompt stays, a start prompt is replaced by the new model's, and runs are told apart by model.
void wait_idle(Workbench& wb, TaskManager& tasks) {
  for (int i = 0; i < 60000 && (wb.busy() || tasks.busy()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    wb.poll();
  }
  wb.poll();
}

TEST(WorkbenchState, AnotherModelClearsWhatBelongedToThePreviousOne) {
  TaskManager tasks;
  Settings settings;  // file "": not persisted
  Workbench wb(tasks, settings);
  const std::string first = ms::test::source_dir() + "/resources/models/default";
  const std::string second = ms::test::fixtures_dir() + "/parity/gpt2";
  // What the command line sets before the first model opens (gui --ablate, --run) stays.
  wb.ablated = {{2, 3}};
  wb.selected_run = 3;
  wb.open_model(first);
  wait_idle(wb, tasks);
  ASSERT_TRUE(wb.model());
  EXPECT_EQ(wb.ablated, (std::vector<std::pair<int, int>>{{2, 3}}));
  EXPECT_EQ(wb.selected_run, 3);
  EXPECT_EQ(wb.model_note(), "");
  EXPECT_EQ(wb.prompt, Workbench::default_prompt(*wb.model()));
  EXPECT_TRUE(wb.is_open_model(first));
  EXPECT_FALSE(wb.is_open_model(second));
  wb.ablated = {{1, 2}};
  wb.calibrated = {{0, 1}};
  wb.selected_run = 7;
  wb.open_model(second);
  wait_idle(wb, tasks);
  ASSERT_TRUE(wb.is_open_model(second));
  EXPECT_TRUE(wb.ablated.empty());
  EXPECT_TRUE(wb.calibrated.empty());
  EXPECT_EQ(wb.selected_run, 0);
  EXPECT_NE(wb.model_note().find("cleared"), std::string::npos) << wb.model_note();
  EXPECT_EQ(wb.prompt, Workbench::default_prompt(*wb.model()));  // the start prompt follows the model
  // A prompt the user typed stays when the next model opens; nothing to clear, no note.
  wb.prompt = "0 1 2 3";
  wb.open_model(first);
  wait_idle(wb, tasks);
  EXPECT_TRUE(wb.is_open_model(first));
  EXPECT_EQ(wb.prompt, "0 1 2 3");
  EXPECT_EQ(wb.model_note(), "");
}

// The Features window's pass: each position's top features are the SAE's own activations there,
// and steering feature f by v in the second pass equals adding v * W_dec[f] at the hook point (the
// error term kept), computed here through add_vector_hook instead of the splice.
TEST(ForwardResult, FeaturesAndSteeringThroughTheSae) {
  auto m = Model::load(ms::test::source_dir() + "/resources/models/default");
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto sae = std::make_shared<Sae>();
  sae->cfg.arch = SaeArch::kStandard;
  sae->cfg.d_in = sae->cfg.d_out = 128;
  sae->cfg.d_sae = 64;
  sae->cfg.hook_name = "blocks.1.hook_resid_post";
  at::manual_seed(5);
  sae->w.W_enc = at::randn({128, 64}) * 0.2;
  sae->w.b_enc = at::zeros({64});
  sae->w.W_dec = at::randn({64, 128}) * 0.2;
  sae->w.b_dec = at::zeros({128});
  ForwardRequest req;
  req.ids = (*m)->tokenizer()->encode("The list was: red cat old book.", true);
  req.sae = sae;
  req.top_features = 3;
  req.steer_feature = 7;
  req.steer_value = 25.0;
  req.lens = false;
  ForwardResult r = compute_forward(**m, req);
  ASSERT_EQ(r.features.size(), req.ids.size());
  ActivationCache cache;
  HookRegistry reg;
  reg.add_forward(sae->cfg.hook_name, cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &reg;
  (void)(*m)->forward((*m)->tokens_tensor(req.ids), fo);
  at::Tensor acts = sae->encode(cache[sae->cfg.hook_name][0]);  // (pos, d_sae)
  for (size_t t = 0; t < r.features.size(); ++t) {
    ASSERT_FALSE(r.features[t].empty()) << t;
    at::Tensor row = acts[static_cast<int64_t>(t)];
    EXPECT_NEAR(r.features[t][0].second, row.max().item<float>(), 1e-4 * (1 + row.max().item<float>())) << t;
    for (const auto& [f, a] : r.features[t]) EXPECT_NEAR(a, row[f].item<float>(), 1e-4 * (1 + std::fabs(a))) << t;
    for (size_t i = 1; i < r.features[t].size(); ++i) EXPECT_GE(r.features[t][i - 1].second, r.features[t][i].second);
  }
  EXPECT_NE(r.intervention.find("feature 7 +25"), std::string::npos) << r.intervention;
  HookRegistry steer;
  steer.add_forward(sae->cfg.hook_name, add_vector_hook(sae->w.W_dec[7], 25.0));
  ForwardOptions so;
  so.hooks = &steer;
  so.last_logits_only = true;
  at::Tensor p = at::softmax((*m)->forward((*m)->tokens_tensor(req.ids), so).reshape({-1}).to(at::kFloat), 0);
  ASSERT_EQ(r.top_prob_ablated.size(), r.top.size());
  double moved = 0;
  for (size_t i = 0; i < r.top.size(); ++i) {
    EXPECT_NEAR(r.top_prob_ablated[i], p[r.top[i].id].item<double>(), 1e-5) << i;  // probabilities: absolute
    moved = std::max(moved, std::fabs(r.top_prob_ablated[i] - r.top[i].prob));
  }
  EXPECT_GT(moved, 1e-3);  // the steer changed the predictions (else the comparison proves nothing)
}

// The all-heads thumbnails and the Text window's averages, against the kept full patterns: with
// every pattern kept (short prompt) and with only the requested layer kept (max_full_floats 0, the
// long-prompt path); a 250-token prompt's thumbnails are max-pooled by 2 (the context is 256).
TEST(ForwardResult, ThumbnailsAndHeadAveragesMatchThePatterns) {
  auto m = sink_model();
  for (int n : {14, 250}) {
    ForwardRequest req;
    for (int i = 0; i < n; ++i) req.ids.push_back(i < 14 ? kIds[i] : 5 + i % 50);
    req.head_means = true;
    ForwardResult all = compute_forward(*m, req);  // n = 250 keeps every pattern too (2*4*250^2 < 16M)
    req.max_full_floats = 0;
    req.keep_layer = 1;
    req.keep_head = 2;
    ForwardResult one = compute_forward(*m, req);
    const int T = n, f = (n + ForwardResult::kThumbSide - 1) / ForwardResult::kThumbSide;
    EXPECT_EQ(one.pattern(1, 0), nullptr);
    EXPECT_EQ(one.layer_mean(0), nullptr);
    ASSERT_NE(one.layer_mean(1), nullptr);
    for (int h = 0; h < 4; ++h) {
      EXPECT_EQ(one.thumb(0, h), nullptr);
      ASSERT_NE(one.thumb(1, h), nullptr);
    }
    double worst_thumb = 0, worst_layer = 0, worst_all = 0;
    for (int l = 0; l < 2; ++l)
      for (int h = 0; h < 4; ++h) {
        auto p = all.pattern(l, h);
        ASSERT_NE(p, nullptr);
        for (const ForwardResult* r : {&all, &one}) {
          auto t = r->thumb(l, h);
          if (!t) continue;
          ASSERT_EQ(t->factor, f);
          ASSERT_EQ(t->rows, (T + f - 1) / f);
          for (int q = 0; q < T; q += 7)  // each sampled cell is the max of its block
            for (int k = 0; k < T; k += 5) {
              float want = NAN;
              for (int i = q / f * f; i < std::min(T, q / f * f + f); ++i)
                for (int j = k / f * f; j < std::min(T, k / f * f + f); ++j) {
                  float v = (*p)[i * T + j];
                  if (!std::isnan(v) && !(want >= v)) want = v;
                }
              float got = t->values[(q / f) * t->cols + k / f];
              if (std::isnan(want)) EXPECT_TRUE(std::isnan(got));
              else worst_thumb = std::max(worst_thumb, double(std::abs(got - want)));
            }
        }
      }
    for (int q = 0; q < T; ++q)
      for (int k = 0; k <= q; ++k) {
        double lm = 0, am = 0;
        for (int l = 0; l < 2; ++l)
          for (int h = 0; h < 4; ++h) {
            double v = (*all.pattern(l, h))[q * T + k];
            am += v / 8;
            if (l == 1) lm += v / 4;
          }
        worst_layer = std::max({worst_layer, std::abs((*all.layer_mean(1))[q * T + k] - lm),
                                std::abs((*one.layer_mean(1))[q * T + k] - lm)});
        worst_all = std::max({worst_all, std::abs((*all.all_heads_mean)[q * T + k] - am),
                              std::abs((*one.all_heads_mean)[q * T + k] - am)});
      }
    std::printf("T=%d: thumbnails max |diff| %.2g, layer mean %.2g, all-heads mean %.2g\n", T, worst_thumb, worst_layer, worst_all);
    EXPECT_EQ(worst_thumb, 0);
    EXPECT_LT(worst_layer, 1e-6);
    EXPECT_LT(worst_all, 1e-6);
  }
}

