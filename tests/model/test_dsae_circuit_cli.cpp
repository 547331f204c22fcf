// `mechscope sae circuit` end to end on the constructed `copy` model: the stored run, its circuit
// compared with an EAP circuit (precision, recall, IoU), a batch item and bad inputs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace ms {
namespace {

using test::run_mechscope;

TEST(DsaeCircuitCli, CopyModelCircuitStoredAndCompared) {
  const std::string dir = test::temp_dir("dsae-cli");
  const std::string model = dir + "/copy", db = dir + "/runs.db";
  ASSERT_EQ(run_mechscope({"zoo", "construct", "copy", "--out", model}).exit_code, 0);
  const std::vector<std::string> task = {"--model", model, "--task", "induction", "--n", "16", "--seq-len", "8",
                                         "--vocab-range", "2:64", "--threads", "1", "--db", db, "--json"};
  auto with = [&](std::vector<std::string> a) {
    a.insert(a.end(), task.begin(), task.end());
    return a;
  };
  auto r = run_mechscope(with({"sae", "circuit"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["heads"], nlohmann::json({"1.0"})) << r.out;  // the copy head (test_dsae_circuit.cpp says why alone)
  EXPECT_EQ(j["positives"].size(), 5u);
  EXPECT_EQ(j["ranking"].size(), 8u);

  auto eap = run_mechscope(with({"circuit", "--method", "eap", "--top-n", "10"}));
  ASSERT_EQ(eap.exit_code, 0) << eap.err;
  const int run_sae = j["run"].get<int>(), run_eap = nlohmann::json::parse(eap.out)["run"].get<int>();
  auto cmp = run_mechscope({"compare", "--db", db, std::to_string(run_sae), std::to_string(run_eap), "--json"});
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  nlohmann::json c = nlohmann::json::parse(cmp.out);
  ASSERT_EQ(c["circuits"].size(), 1u);
  // The discrete-SAE circuit's head is in EAP's top-10-edge circuit.
  EXPECT_EQ(c["circuits"][0]["head_precision"].get<double>(), 1.0) << cmp.out;
  EXPECT_GT(c["circuits"][0]["head_recall"].get<double>(), 0.0);
  EXPECT_GT(c["circuits"][0]["head_overlap"].get<double>(), 0.0);
  auto text = run_mechscope({"compare", "--db", db, std::to_string(run_sae), std::to_string(run_eap)});
  EXPECT_NE(text.out.find("precision 1.000"), std::string::npos) << text.out;

  // A batch item stores the same circuit.
  test::write_file(dir + "/job.toml", "[[model]]\nname = \"copy\"\npath = \"" + model + "\"\n\n[[analysis]]\nkind = \"sae-circuit\"\n"
                   "task = \"induction\"\nn = 16\nseq_len = 8\nvocab_range = \"2:64\"\n");
  auto b = run_mechscope({"batch", dir + "/job.toml", "--db", db, "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;

  // Bad inputs: a usage error names the option; a task the model cannot do is a bad input.
  EXPECT_EQ(run_mechscope(with({"sae", "circuit", "--position", "nope"})).exit_code, 2);
  EXPECT_EQ(run_mechscope(with({"sae", "circuit", "--examples", "1"})).exit_code, 2);
  ASSERT_EQ(run_mechscope({"zoo", "random", "--out", dir + "/rnd", "--d-vocab", "64"}).exit_code, 0);
  auto bad = run_mechscope({"sae", "circuit", "--model", dir + "/rnd", "--task", "induction", "--n", "4", "--db", db});
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_NE(bad.err.find("at least 2"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace ms
