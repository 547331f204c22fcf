// `mechscope circuit`, `mechscope patch` and circuit comparison end to end on a small random model:
// stored runs, JSON output, faithfulness of the full circuit, usage and bad-input exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace ms {
namespace {

using test::run_mechscope;

TEST(CircuitCli, CircuitPatchCompare) {
  std::string dir = test::temp_dir("circuit-cli");
  std::string model = dir + "/m", db = dir + "/runs.db";
  auto z = run_mechscope({"zoo", "random", "--out", model, "--init-std", "0.2", "--d-vocab", "64"});
  ASSERT_EQ(z.exit_code, 0) << z.err;
  std::vector<std::string> base = {"--model", model, "--task", "induction", "--n", "6", "--seq-len", "5",
                                   "--threads", "1", "--db", db, "--json"};
  auto with = [&](std::vector<std::string> a) {
    a.insert(a.end(), base.begin(), base.end());
    return a;
  };
  auto eap = run_mechscope(with({"circuit", "--method", "eap", "--top-n", "500", "--evaluate"}));
  ASSERT_EQ(eap.exit_code, 0) << eap.err;
  nlohmann::json j = nlohmann::json::parse(eap.out);
  // 500 >= every edge: the whole graph (less dangling edges), so faithfulness is 1.
  EXPECT_NEAR(j["evaluation"]["faithfulness"].get<double>(), 1.0, 1e-4);
  EXPECT_GT(j["n_edges"].get<int>(), 50);
  auto ig = run_mechscope(with({"circuit", "--method", "eap-ig", "--ig-steps", "2", "--top-n", "10"}));
  ASSERT_EQ(ig.exit_code, 0) << ig.err;
  EXPECT_LE(nlohmann::json::parse(ig.out)["n_edges"].get<int>(), 10);
  auto ac = run_mechscope(with({"circuit", "--method", "acdc", "--tau", "0.05", "--evaluate"}));
  ASSERT_EQ(ac.exit_code, 0) << ac.err;
  auto pp = run_mechscope(with({"circuit", "--method", "path", "--receivers", "1.0:k,logits"}));
  ASSERT_EQ(pp.exit_code, 0) << pp.err;
  auto patch = run_mechscope(with({"patch", "--what", "resid_pre"}));
  ASSERT_EQ(patch.exit_code, 0) << patch.err;
  nlohmann::json pj = nlohmann::json::parse(patch.out);
  EXPECT_EQ(pj["values"].size(), 2u);
  EXPECT_EQ(pj["tokens"].size(), pj["values"][0].size());

  auto cmp = run_mechscope({"compare", "--db", db, std::to_string(j["run"].get<int>()),
                            std::to_string(nlohmann::json::parse(ig.out)["run"].get<int>()), "--json"});
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  nlohmann::json cj = nlohmann::json::parse(cmp.out);
  ASSERT_EQ(cj["circuits"].size(), 1u);
  EXPECT_GT(cj["circuits"][0]["edge_iou"].get<double>(), 0.0);
  EXPECT_LE(cj["circuits"][0]["edge_iou"].get<double>(), 1.0);
  auto self = run_mechscope({"compare", "--db", db, std::to_string(j["run"].get<int>()),
                             std::to_string(j["run"].get<int>()), "--json"});
  EXPECT_EQ(nlohmann::json::parse(self.out)["circuits"][0]["edge_iou"].get<double>(), 1.0);

  EXPECT_EQ(run_mechscope(with({"circuit", "--method", "nope"})).exit_code, 2);
  EXPECT_EQ(run_mechscope(with({"circuit", "--method", "path", "--receivers", "9.9"})).exit_code, 2);
  EXPECT_EQ(run_mechscope(with({"patch", "--what", "nope"})).exit_code, 2);
  test::write_file(dir + "/bad.csv", "clean,corrupted,answer,distractor\n\"[1,2]\",\"[1]\",[3],[4]\n");
  auto bad = run_mechscope({"circuit", "--model", model, "--task", "custom", "--task-file", dir + "/bad.csv", "--db", db});
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_NE(bad.err.find("bad.csv line 2"), std::string::npos) << bad.err;
  auto text = run_mechscope({"circuit", "--model", model, "--task", "ioi", "--db", db});
  EXPECT_EQ(text.exit_code, 2) << text.err;  // ioi needs a tokenizer
}

TEST(CircuitCli, HeadsFindsTheCopyModelsHeads) {
  std::string dir = test::temp_dir("heads-cli");
  ASSERT_EQ(run_mechscope({"zoo", "construct", "copy", "--out", dir + "/copy"}).exit_code, 0);
  auto r = run_mechscope({"heads", "--model", dir + "/copy", "--seq-len", "10", "--vocab-range", "2:64", "--threads",
                          "1", "--db", dir + "/runs.db", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  const auto& prev = j["detectors"]["previous_token_head"][0];
  EXPECT_EQ(prev["layer"], 0);  // 0.0 and 1.3 are both previous-token heads by construction
  EXPECT_EQ(prev["head"], 0);
  EXPECT_GT(prev["score"].get<double>(), 0.9);
  const auto& ind = j["detectors"]["induction_head"][0];
  EXPECT_EQ(ind["layer"], 1);
  EXPECT_EQ(ind["head"], 0);
  EXPECT_EQ(run_mechscope({"heads", "--model", dir + "/copy", "--detect", "bogus", "--db", dir + "/runs.db"}).exit_code, 2);
}

}  // namespace
}  // namespace ms
