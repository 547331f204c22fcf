// `mechscope sae info|encode|splice` on a random model from `zoo random` and SAE folders written
// here: the outputs, the error term, and bad SAE files exiting 3 with messages naming the file.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/io/npy.h"
#include "core/io/safetensors.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;
using namespace ms;
using test::run_mechscope;

namespace {

// An SAELens folder: standard architecture, random weights.
std::string write_sae(const std::string& dir, int64_t d_in, int64_t d_sae, const std::string& hook,
                      const std::string& arch = "standard") {
  fs::create_directories(dir);
  at::manual_seed(9);
  nlohmann::json cfg{{"architecture", arch}, {"d_in", d_in}, {"d_sae", d_sae}, {"dtype", "float32"},
                     {"apply_b_dec_to_input", true}, {"normalize_activations", "none"},
                     {"metadata", {{"hook_name", hook}, {"sae_lens_version", "6.5.1"}}}};
  test::write_file(dir + "/cfg.json", cfg.dump(2));
  Status st = write_safetensors(dir + "/sae_weights.safetensors",
                                {{"W_enc", at::randn({d_in, d_sae}) * 0.3}, {"W_dec", at::randn({d_sae, d_in}) * 0.3},
                                 {"b_enc", at::randn({d_sae}) * 0.1}, {"b_dec", at::randn({d_in}) * 0.1}});
  EXPECT_TRUE(st.ok()) << st.error().message;
  return dir;
}

class SaeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new std::string(test::temp_dir("sae_cli"));
    model = new std::string(*dir + "/tiny");
    auto r = run_mechscope({"zoo", "random", "--n-layers", "2", "--d-model", "32", "--n-heads", "4", "--d-vocab", "64",
                            "--seed", "3", "--init-std", "0.2", "--out", *model});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    sae = new std::string(write_sae(*dir + "/sae", 32, 64, "blocks.1.hook_resid_pre"));
  }
  static std::string* dir;
  static std::string* model;
  static std::string* sae;
};
std::string* SaeCli::dir = nullptr;
std::string* SaeCli::model = nullptr;
std::string* SaeCli::sae = nullptr;

}  // namespace

TEST_F(SaeCli, Info) {
  auto r = run_mechscope({"sae", "info", "--sae", *sae, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "standard");
  EXPECT_EQ(j["hook_name"], "blocks.1.hook_resid_pre");
  EXPECT_EQ(j["d_in"], 32);
  EXPECT_EQ(j["d_sae"], 64);
  EXPECT_EQ(j["normalize_activations"], "none");
  auto npz = run_mechscope({"sae", "info", "--sae", test::fixtures_dir() + "/sae/gemma_scope_npz"});
  ASSERT_EQ(npz.exit_code, 0) << npz.err;
  EXPECT_NE(npz.out.find("architecture: jumprelu"), std::string::npos) << npz.out;
  // circuit-tracer's layers 2 and 3 carry W_skip (ReLU and JumpReLU; make_sae_fixtures.py), 0 not.
  const std::string set = test::fixtures_dir() + "/sae/circuit_tracer_set";
  for (auto [layer, arch, skip] : {std::tuple<const char*, const char*, bool>{"0", "transcoder", false},
                                   {"2", "skip_transcoder", true}, {"3", "jumprelu_transcoder", true}}) {
    auto t = run_mechscope({"sae", "info", "--sae", set, "--layer", layer, "--json"});
    ASSERT_EQ(t.exit_code, 0) << t.err;
    auto tj = nlohmann::json::parse(t.out);
    EXPECT_EQ(tj["architecture"], arch) << layer;
    EXPECT_EQ(tj["has_skip"], skip) << layer;
  }
}

TEST_F(SaeCli, EncodeWritesPositionsByFeatures) {
  const std::string acts = *dir + "/acts.npy", recons = *dir + "/recons.npy";
  auto r = run_mechscope({"sae", "encode", "--model", *model, "--sae", *sae, "--tokens", "1,2,3,4,5",
                          "--dump-acts", acts, "--dump-recons", recons});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto a = read_npy(acts);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->sizes(), (std::vector<int64_t>{5, 64}));
  EXPECT_EQ(a->scalar_type(), at::kFloat);
  EXPECT_GE(a->min().item<float>(), 0.0f);
  auto rc = read_npy(recons);
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(rc->sizes(), (std::vector<int64_t>{5, 32}));
}

TEST_F(SaeCli, SpliceKeepsTheLogitsUnlessAsked) {
  auto keep = run_mechscope({"sae", "splice", "--model", *model, "--sae", *sae, "--tokens", "1,2,3,4,5,6", "--json"});
  ASSERT_EQ(keep.exit_code, 0) << keep.err;
  auto j = nlohmann::json::parse(keep.out);
  EXPECT_LE(j["max_logit_diff"].get<double>(), 1e-5 * j["logit_scale"].get<double>());
  EXPECT_TRUE(j.contains("ce_loss_recovered"));
  EXPECT_EQ(j["n_tokens"], 6);
  EXPECT_EQ(j["hook_names"][0], "blocks.1.hook_resid_pre.hook_sae_input");
  auto drop = run_mechscope({"sae", "splice", "--model", *model, "--sae", *sae, "--tokens", "1,2,3,4,5,6", "--no-error",
                             "--json"});
  ASSERT_EQ(drop.exit_code, 0) << drop.err;
  auto jd = nlohmann::json::parse(drop.out);
  EXPECT_GT(jd["max_logit_diff"].get<double>(), 1e-3 * jd["logit_scale"].get<double>());
  auto text = run_mechscope({"sae", "splice", "--model", *model, "--sae", *sae, "--tokens", "1,2,3,4"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("CE loss recovered"), std::string::npos) << text.out;
}

TEST_F(SaeCli, BadSaeFilesExit3NamingTheFile) {
  // d_in that does not match the hook point.
  std::string wide = write_sae(*dir + "/wide", 48, 64, "blocks.1.hook_resid_pre");
  auto r = run_mechscope({"sae", "encode", "--model", *model, "--sae", wide, "--tokens", "1,2", "--dump-acts",
                          *dir + "/x.npy"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(wide + ": d_in 48 does not match blocks.1.hook_resid_pre"), std::string::npos) << r.err;
  // A hook point the model does not have.
  std::string far = write_sae(*dir + "/far", 32, 64, "blocks.7.hook_resid_pre");
  r = run_mechscope({"sae", "splice", "--model", *model, "--sae", far, "--tokens", "1,2"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("blocks.7.hook_resid_pre"), std::string::npos) << r.err;
  // Unknown architecture.
  std::string odd = write_sae(*dir + "/odd", 32, 64, "blocks.1.hook_resid_pre", "wibble");
  r = run_mechscope({"sae", "info", "--sae", odd});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(odd + "/cfg.json: unknown SAE architecture 'wibble'"), std::string::npos) << r.err;
  // Truncated weights.
  std::string cut = write_sae(*dir + "/cut", 32, 64, "blocks.1.hook_resid_pre");
  std::string bytes = test::read_file(cut + "/sae_weights.safetensors");
  test::write_file(cut + "/sae_weights.safetensors", bytes.substr(0, bytes.size() / 2));
  r = run_mechscope({"sae", "info", "--sae", cut});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(cut + "/sae_weights.safetensors"), std::string::npos) << r.err;
  // A bad params.npz.
  std::string npz = *dir + "/bad.npz";
  test::write_file(npz, "PK\x05\x06 not really");
  r = run_mechscope({"sae", "info", "--sae", npz});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(npz), std::string::npos) << r.err;
  // A Gemma Scope SAE needs --hook before it can be used with a model.
  r = run_mechscope({"sae", "encode", "--model", *model, "--sae", test::fixtures_dir() + "/sae/gemma_scope_npz",
                     "--tokens", "1,2", "--dump-acts", *dir + "/y.npy"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("--hook"), std::string::npos) << r.err;
}
