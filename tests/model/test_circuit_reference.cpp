// EAP and EAP-IG against the independent float64 Python implementation
// (scripts/reference/eap_reference.py, Debian's python3-torch) on a tiny GPT-2 checkpoint.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/analysis/circuits/circuit_discovery.h"
#include "core/model/model_save.h"
#include "tests/support/numerics.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_models.h"

namespace ms {
namespace {

TEST(CircuitReference, EapMatchesFloat64Python) {
  if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 is absent";
  std::string dir = test::temp_dir("circuit-ref");
  auto m = test::tiny_model("gpt2", 4);
  ASSERT_TRUE(save_model_hf(m->config(), m->weights(), dir + "/model").ok());
  auto loaded = Model::load(dir + "/model");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const Model& model = **loaded;
  TaskOptions o;
  o.name = "induction";
  o.n = 6;
  o.half_len = 5;
  TaskPairs t = make_task(o, nullptr, model.config().d_vocab).value();
  nlohmann::json task;
  auto ids = [](const at::Tensor& x) {
    std::vector<std::vector<int64_t>> out;
    for (int64_t i = 0; i < x.size(0); ++i)
      out.emplace_back(x[i].data_ptr<int64_t>(), x[i].data_ptr<int64_t>() + x.size(1));
    return out;
  };
  task["clean"] = ids(t.clean.contiguous());
  task["corrupted"] = ids(t.corrupted.contiguous());
  task["answer_pos"] = t.answer_pos;
  task["answer"] = t.answer;
  task["distractor"] = t.distractor;
  test::write_file(dir + "/task.json", task.dump());
  CircuitGraph g(model.config());
  TaskRuns runs = run_task(model, g, t);
  for (int steps : {0, 5}) {
    std::string out = dir + "/out" + std::to_string(steps) + ".json";
    std::string cmd = "/usr/bin/python3 " + test::source_dir() + "/scripts/reference/eap_reference.py " + dir +
                      "/model " + dir + "/task.json " + out + " " + std::to_string(steps);
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    nlohmann::json ref = nlohmann::json::parse(test::read_file(out));
    // Logit differences, float32 against float64: relative to the logits' scale.
    const double logits = runs.clean_logits.abs().max().item<double>();
    EXPECT_TRUE(test::close_rel("metric clean vs float64", runs.metric_clean, ref["metric_clean"].get<double>(),
                                test::kF32VsF64Tol, logits));
    EXPECT_TRUE(test::close_rel("metric corrupted vs float64", runs.metric_corrupted,
                                ref["metric_corrupted"].get<double>(), test::kF32VsF64Tol, logits));
    EdgeScores e = edge_attribution(model, g, t, runs, steps);
    ASSERT_EQ(ref["scores"].size(), static_cast<size_t>(g.n_targets()));
    double worst = 0, scale = 0;
    int64_t n = 0;
    for (int tt = 0; tt < g.n_targets(); ++tt)
      for (int s = 0; s < g.n_sources(); ++s) {
        const auto& r = ref["scores"][static_cast<size_t>(tt)][static_cast<size_t>(s)];
        double mine = e.scores[tt][s].item<double>();
        if (r.is_null()) {
          EXPECT_TRUE(std::isnan(mine)) << tt << " " << s;
          continue;
        }
        ++n;
        scale = std::max(scale, std::abs(r.get<double>()));
        worst = std::max(worst, std::abs(mine - r.get<double>()));
      }
    std::printf("%s vs float64 Python: %lld edges, max |diff| %.3g of max |score| %.3g\n", e.method.c_str(),
                static_cast<long long>(n), worst, scale);
    EXPECT_EQ(n, g.n_edges());
    EXPECT_LT(worst, 1e-4 * std::max(1.0, scale));
  }
}

}  // namespace
}  // namespace ms
