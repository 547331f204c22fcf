// `mechscope sae heads` and the `sae-heads` batch kind on a `zoo random` model with a hook_z SAE
// written here: the run is stored with its head scores (NaN outside the SAE's layer) and tensors,
// the CLI and a batch item store the same numbers, and an SAE not on hook_z exits 3 naming its file.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/io/safetensors.h"
#include "storage/database.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;
using namespace ms;
using test::run_mechscope;

namespace {

std::string write_sae(const std::string& dir, int64_t d_in, int64_t d_sae, const std::string& hook) {
  fs::create_directories(dir);
  at::manual_seed(11);
  nlohmann::json cfg{{"architecture", "standard"}, {"d_in", d_in}, {"d_sae", d_sae}, {"dtype", "float32"},
                     {"apply_b_dec_to_input", true}, {"normalize_activations", "none"},
                     {"metadata", {{"hook_name", hook}, {"sae_lens_version", "6.5.1"}}}};
  test::write_file(dir + "/cfg.json", cfg.dump(2));
  Status st = write_safetensors(dir + "/sae_weights.safetensors",
                                {{"W_enc", at::randn({d_in, d_sae}) * 0.5}, {"W_dec", at::randn({d_sae, d_in}) * 0.3},
                                 {"b_enc", at::randn({d_sae}) * 0.1}, {"b_dec", at::randn({d_in}) * 0.1}});
  EXPECT_TRUE(st.ok()) << st.error().message;
  return dir;
}

}  // namespace

TEST(SaeHeadsCli, StoresHeadScoresAndMatchesBatch) {
  const std::string dir = test::temp_dir("sae_heads_cli");
  const std::string model = dir + "/tiny";
  auto z = run_mechscope({"zoo", "random", "--n-layers", "2", "--d-model", "32", "--n-heads", "4", "--d-vocab", "64",
                          "--seed", "3", "--init-std", "0.2", "--out", model});
  ASSERT_EQ(z.exit_code, 0) << z.err;
  const std::string sae = write_sae(dir + "/sae", 32, 48, "blocks.1.attn.hook_z");
  test::write_file(dir + "/p.jsonl", "{\"tokens\": [1, 5, 9, 2, 7, 3, 8, 4]}\n{\"tokens\": [4, 4, 6, 1, 2, 9]}\n");
  auto r = run_mechscope({"sae", "heads", "--model", model, "--sae", sae, "--prompts", dir + "/p.jsonl", "--db",
                          dir + "/a.db", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layer"], 1);
  EXPECT_EQ(j["n_tokens"], 14);
  EXPECT_GT(j["n_live"].get<int>(), 5);
  EXPECT_LE(j["max_sum_error"].get<double>(), 1e-5);
  const int64_t run = j["run"].get<int64_t>();
  auto text = run_mechscope({"sae", "heads", "--model", model, "--sae", sae, "--prompts", dir + "/p.jsonl", "--db",
                             dir + "/a.db", "--dominance", "0.6"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("polysemantic"), std::string::npos) << text.out;

  test::write_file(dir + "/job.toml", "threads = 1\n[[model]]\nname = \"tiny\"\npath = \"" + model +
                                          "\"\n[[prompts]]\nname = \"p\"\npath = \"p.jsonl\"\n[[analysis]]\n"
                                          "kind = \"sae-heads\"\nsae = \"sae\"\n");
  auto b = run_mechscope({"batch", dir + "/job.toml", "--db", dir + "/b.db"});
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;

  auto a_db = Database::open(dir + "/a.db").value();
  auto b_db = Database::open(dir + "/b.db").value();
  auto a_scores = a_db->get_head_scores(run, "sae_dominated_features").value();
  ASSERT_EQ(a_scores.n_layers, 2);
  EXPECT_TRUE(std::isnan(a_scores.at(0, 0)));  // not computed: the SAE reads layer 1
  double dominated = 0;
  for (int h = 0; h < 4; ++h) dominated += a_scores.at(1, h);
  EXPECT_GT(dominated, 0);
  // The batch item (the newest run of kind sae-heads in b.db) stores the same numbers.
  int64_t b_run = -1;
  const std::vector<RunSummary> b_runs = b_db->list_runs().value();  // a copy: value() of a temporary
  for (const RunSummary& s : b_runs)
    if (s.run.spec.kind == "sae-heads") b_run = s.run.id;
  ASSERT_GE(b_run, 0);
  for (const char* metric : {"sae_dominated_features", "sae_activation_share"}) {
    auto x = a_db->get_head_scores(run, metric).value(), y = b_db->get_head_scores(b_run, metric).value();
    for (int h = 0; h < 4; ++h) EXPECT_DOUBLE_EQ(x.at(1, h), y.at(1, h)) << metric;
  }
  for (const char* t : {"feature_head_fraction", "feature_decoder_fraction", "feature_head_stats", "sae_heads_summary"})
    EXPECT_TRUE(at::equal(a_db->get_tensor(run, t).value(), b_db->get_tensor(b_run, t).value())) << t;
}

TEST(SaeHeadsCli, NotOnHookZIsBadInput) {
  const std::string dir = test::temp_dir("sae_heads_bad");
  const std::string model = dir + "/tiny";
  auto z = run_mechscope({"zoo", "random", "--n-layers", "2", "--d-model", "32", "--n-heads", "4", "--d-vocab", "64",
                          "--seed", "3", "--out", model});
  ASSERT_EQ(z.exit_code, 0) << z.err;
  const std::string sae = write_sae(dir + "/resid_sae", 32, 16, "blocks.1.hook_resid_pre");
  auto r = run_mechscope({"sae", "heads", "--model", model, "--sae", sae, "--tokens", "1,2,3", "--db", dir + "/x.db"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("resid_sae"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hook_z"), std::string::npos) << r.err;
}
