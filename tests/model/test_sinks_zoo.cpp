// Sink analysis against the constructed models, whose mechanisms are known by design: every
// planted first-token sink head and the hidden sink are found, the massive activations are found
// where they were planted, and nothing else passes the thresholds.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "core/analysis/sinks/sinks.h"
#include "core/zoo/zoo_construct.h"
#include "tests/support/test_support.h"

#include <nlohmann/json.hpp>

namespace ms {
namespace {

std::unique_ptr<Model> load(const ConstructedModel& c) {
  Result<std::unique_ptr<Model>> m = Model::from_weights(c.config, c.weights);
  EXPECT_TRUE(m.ok());
  return std::move(*m);
}

std::vector<std::vector<int32_t>> check_prompts(const ConstructedModel& c) {
  return c.zoo["check_prompts"].get<std::vector<std::vector<int32_t>>>();
}

TEST(SinksOnConstructedModels, PlantedSinksAreFoundAndNothingElse) {
  ConstructedModel c = build_sink_model();
  auto m = load(c);
  std::set<std::pair<int64_t, int64_t>> sink_heads, hidden_heads;
  for (const auto& h : c.zoo["heads"]) {
    if (h["role"] == "first_token_sink") sink_heads.insert({h["layer"].get<int64_t>(), h["head"].get<int64_t>()});
    if (h["role"] == "hidden_sink") hidden_heads.insert({h["layer"].get<int64_t>(), h["head"].get<int64_t>()});
  }
  ASSERT_EQ(sink_heads.size(), 3u);
  ASSERT_EQ(hidden_heads.size(), 1u);
  std::vector<std::vector<int32_t>> prompts = check_prompts(c);
  int64_t delimiters = 0;
  for (const auto& p : prompts)
    for (int32_t t : p) delimiters += t == kZooDelim;
  ASSERT_GT(delimiters, 0);
  for (bool relative : {false, true}) {
    SinkOptions o;
    o.hidden_relative = relative;
    o.hidden_threshold = relative ? 5.0 : 0.1;
    o.attn_block = 16;  // streamed in blocks
    SinkReport r = analyze_sinks(*m, prompts, o);
    for (int64_t l = 0; l < r.n_layers; ++l)
      for (int64_t h = 0; h < r.n_heads; ++h) {
        bool planted = sink_heads.count({l, h}) > 0;
        double a0 = r.head_alpha0[l][h].item<double>(), rate = r.head_sink_rate[l][h].item<double>();
        if (planted) {
          EXPECT_GT(a0, 0.9) << l << "." << h;
          EXPECT_EQ(rate, 1.0) << l << "." << h;
        } else {
          EXPECT_EQ(rate, 0.0) << l << "." << h << " alpha_0 " << a0;
        }
      }
    // Every hidden sink is the planted head on a delimiter, and every delimiter is found.
    std::set<std::tuple<int64_t, int64_t>> found;
    for (const HiddenSink& s : r.hidden) {
      EXPECT_TRUE(hidden_heads.count({s.layer, s.head})) << s.layer << "." << s.head << " at " << s.position;
      EXPECT_EQ(s.token_id, kZooDelim) << "position " << s.position;
      found.insert({s.prompt, s.position});
    }
    EXPECT_EQ(static_cast<int64_t>(found.size()), delimiters) << (relative ? "relative" : "absolute");
    EXPECT_TRUE(r.massive.empty());
  }
}

TEST(SinksOnConstructedModels, MassiveActivationsAreFoundWherePlanted) {
  ConstructedModel c = build_massive_model();
  auto m = load(c);
  std::vector<std::vector<int32_t>> prompts = check_prompts(c);
  SinkReport r = analyze_sinks(*m, prompts, SinkOptions{});
  std::set<std::tuple<int64_t, int64_t, int64_t, int64_t>> expected, found;  // prompt, layer, pos, dim
  for (const auto& e : c.zoo["massive"])
    for (size_t p = 0; p < prompts.size(); ++p)
      for (size_t t = 0; t < prompts[p].size(); ++t)
        if (prompts[p][t] == e["token_id"].get<int32_t>())
          for (const auto& l : e["layers"])
            expected.insert({static_cast<int64_t>(p), l.get<int64_t>(), static_cast<int64_t>(t), e["dim"].get<int64_t>()});
  ASSERT_FALSE(expected.empty());
  for (const MassiveActivation& a : r.massive) {
    found.insert({a.prompt, a.layer, a.position, a.dim});
    EXPECT_GT(std::abs(a.value), 100.0);
    EXPECT_GE(a.ratio_to_median, 1000.0);
  }
  EXPECT_EQ(found, expected);
  EXPECT_EQ(r.sink_rate_first, 0.0);
}

}  // namespace
}  // namespace ms

namespace ms {
namespace {

TEST(SinksCli, StoresARunAndPrintsTheSinks) {
  std::string dir = test::temp_dir("sinks-cli");
  ASSERT_TRUE(construct_model("sink", dir + "/sink", false).ok());
  std::vector<int32_t> ids = build_sink_model().zoo["check_prompts"][0].get<std::vector<int32_t>>();
  std::string toks;
  for (int32_t t : ids) toks += (toks.empty() ? "" : ",") + std::to_string(t);
  auto r = test::run_mechscope({"sinks", "--model", dir + "/sink", "--tokens", toks, "--db", dir + "/m.db",
                                "--hidden-threshold", "rel:5", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["sink_rate_first_token"].get<double>(), 37.5, 1e-9);  // 3 of 8 heads
  EXPECT_EQ(j["top_heads"].size(), 8u);
  for (const auto& h : j["hidden_sinks"]) EXPECT_EQ(h["layer"].get<int>() * 10 + h["head"].get<int>(), 12);
  auto runs = test::run_mechscope({"runs", "--db", dir + "/m.db", "--json"});
  ASSERT_EQ(runs.exit_code, 0) << runs.err;
  EXPECT_NE(runs.out.find("\"sinks\""), std::string::npos);
  // Usage errors: no input, two inputs, a bad threshold.
  EXPECT_EQ(test::run_mechscope({"sinks", "--model", dir + "/sink", "--db", dir + "/m.db"}).exit_code, 2);
  EXPECT_EQ(test::run_mechscope({"sinks", "--model", dir + "/sink", "--tokens", "0,1", "--text", "x"}).exit_code, 2);
  EXPECT_EQ(test::run_mechscope({"sinks", "--model", dir + "/sink", "--tokens", "0,1", "--hidden-threshold", "5"}).exit_code, 2);
}

}  // namespace
}  // namespace ms
