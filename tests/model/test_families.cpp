// The families of issue [3/7] (Qwen3, Phi-3, OLMo 2, Gemma 2, Gemma 3) end to end through the real
// binary: `zoo random --arch` writes a model the loader takes, `info` lists the family's own hook
// points (q/k norms, post-norms; none before the branches in OLMo 2), and sinks, retrieval, heads,
// patch and circuit --method eap (with its DLA) run and store runs. The numbers themselves are
// checked against the float64 reference in test_parity; here every analysis must run and say what
// its numbers mean where the model is not a plain pre-norm one.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/model/model.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

using test::run_mechscope;

struct Family {
  std::string arch;
  std::vector<std::string> has, lacks;  // hook points info must list / must not list
};

class Families : public ::testing::TestWithParam<Family> {};

TEST_P(Families, RandomModelRunsEveryAnalysis) {
  const Family& f = GetParam();
  std::string dir = test::temp_dir("family-" + f.arch), model = dir + "/m", db = dir + "/runs.db";
  auto z = run_mechscope({"zoo", "random", "--arch", f.arch, "--n-layers", "2", "--d-model", "32", "--n-heads", "4",
                          "--n-kv-heads", "2", "--d-vocab", "64", "--init-std", "0.2", "--seed", "5", "--out", model});
  ASSERT_EQ(z.exit_code, 0) << z.err;
  Result<std::unique_ptr<Model>> m = Model::load(model);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->config().model_type, f.arch);

  auto info = run_mechscope({"info", "--model", model});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  for (const std::string& h : f.has) EXPECT_NE(info.out.find(h), std::string::npos) << f.arch << " lacks " << h;
  for (const std::string& h : f.lacks) EXPECT_EQ(info.out.find(h), std::string::npos) << f.arch << " lists " << h;

  std::string toks = "0";
  for (int t = 1; t < 24; ++t) toks += "," + std::to_string(2 + (t * 11) % 62);
  auto sinks = run_mechscope({"sinks", "--model", model, "--tokens", toks, "--db", db, "--json"});
  EXPECT_EQ(sinks.exit_code, 0) << sinks.err;
  auto heads = run_mechscope({"heads", "--model", model, "--seq-len", "8", "--vocab-range", "2:64", "--threads", "1",
                              "--db", db, "--json"});
  EXPECT_EQ(heads.exit_code, 0) << heads.err;
  auto retrieval = run_mechscope({"retrieval", "--model", model, "--lengths", "48", "--depths", "2", "--threads", "1",
                                  "--db", db, "--json"});
  EXPECT_EQ(retrieval.exit_code, 0) << retrieval.err;
  const std::vector<std::string> task = {"--model", model, "--task", "induction", "--n", "4", "--seq-len", "5",
                                         "--threads", "1", "--db", db};
  std::vector<std::string> patch = {"patch", "--what", "z", "--json"};
  patch.insert(patch.end(), task.begin(), task.end());
  auto p = run_mechscope(patch);
  EXPECT_EQ(p.exit_code, 0) << p.err;
  std::vector<std::string> eap = {"circuit", "--method", "eap", "--top-n", "5000", "--evaluate", "--json"};
  eap.insert(eap.end(), task.begin(), task.end());
  auto c = run_mechscope(eap);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  nlohmann::json cj = nlohmann::json::parse(c.out);
  // Every edge kept: the circuit is the model, whatever norms sit between the heads (the edge
  // forward recomputes each target's input; float32 reordering only).
  EXPECT_NEAR(cj["evaluation"]["faithfulness"].get<double>(), 1.0, 1e-3) << c.out;
  const auto& cfg = (*m)->config();
  const std::string notes = cj["dla"]["notes"].dump();
  EXPECT_EQ(notes.find("post-norm model") != std::string::npos, cfg.post_norm) << notes;
  EXPECT_EQ(notes.find("final logit soft-capping") != std::string::npos, cfg.final_softcap > 0) << notes;
  auto runs = run_mechscope({"runs", "list", "--db", db, "--json"});
  ASSERT_EQ(runs.exit_code, 0) << runs.err;
  EXPECT_GE(nlohmann::json::parse(runs.out).size(), 5u);
}

INSTANTIATE_TEST_SUITE_P(
    Arch, Families,
    ::testing::Values(
        Family{"qwen3", {"blocks.1.attn.q_norm.hook_scale", "blocks.1.attn.k_norm.hook_normalized", "ln1.hook_scale"},
               {"ln1_post"}},
        Family{"phi3", {"blocks.1.ln2.hook_scale", "attn.hook_rot_q"}, {"q_norm", "ln1_post"}},
        Family{"olmo2", {"blocks.0.attn.q_norm.hook_scale", "blocks.0.ln1_post.hook_scale", "blocks.0.ln2_post.hook_normalized"},
               {"blocks.0.ln1.hook_scale", "blocks.0.ln2.hook_scale"}},
        Family{"gemma2", {"blocks.0.ln1.hook_scale", "blocks.0.ln1_post.hook_scale", "blocks.1.ln2_post.hook_scale"},
               {"q_norm"}},
        Family{"gemma3_text", {"blocks.0.attn.q_norm.hook_scale", "blocks.0.ln1_post.hook_normalized"}, {}}),
    [](const ::testing::TestParamInfo<Family>& info) { return info.param.arch; });

}  // namespace
}  // namespace ms
