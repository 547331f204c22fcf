// Smoke tests of the real mechscope binary on tiny models: every command, --json output, the
// files it writes, and the exit codes for usage errors (2) and bad input files (3).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/model/model.h"
#include "core/io/npy.h"
#include "core/io/safetensors.h"
#include "tests/support/numerics.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

using test::run_mechscope;

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = new std::string(test::temp_dir("cli"));
    model = new std::string(*dir + "/tiny");
    auto r = run_mechscope({"zoo", "random", "--arch", "llama", "--n-layers", "2", "--d-model", "32",
                            "--n-heads", "4", "--n-kv-heads", "2", "--d-vocab", "64", "--seed", "3",
                            "--init-std", "0.2", "--out", *model});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static std::string* dir;
  static std::string* model;
};
std::string* Cli::dir = nullptr;
std::string* Cli::model = nullptr;

// A copy of the tiny model's folder with one file replaced or added.
std::string variant(const std::string& src, const std::string& name) {
  std::string dst = test::temp_dir(name);
  for (const auto& e : fs::directory_iterator(src)) fs::copy(e.path(), fs::path(dst) / e.path().filename());
  return dst;
}

TEST_F(Cli, HelpAndVersion) {
  auto r = run_mechscope({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("forward"), std::string::npos);
  r = run_mechscope({"forward", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--dump-logits"), std::string::npos);
}

// A prompt longer than the context runs on a rotary model (it can), with a warning on stderr
// naming both lengths; within the context there is none.
TEST_F(Cli, PromptPastTheContextIsWarnedAbout) {
  std::string dir = test::temp_dir("cli-ctx") + "/m";
  auto r = run_mechscope({"zoo", "random", "--arch", "llama", "--n-layers", "1", "--d-model", "16", "--n-heads", "2",
                          "--d-vocab", "32", "--n-ctx", "8", "--seed", "1", "--out", dir});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_mechscope({"forward", "--model", dir, "--tokens", "1,2,3,4,5,6,7,8,9,10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: the prompt has 10 tokens, more than the model's context of 8"), std::string::npos) << r.err;
  r = run_mechscope({"forward", "--model", dir, "--tokens", "1,2,3,4,5,6,7,8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
}

TEST_F(Cli, Info) {
  auto r = run_mechscope({"info", "--model", *model});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("blocks.1.attn.hook_pattern"), std::string::npos);
  EXPECT_NE(r.out.find("2 key/value"), std::string::npos);
  r = run_mechscope({"info", "--model", *model, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["config"]["n_layers"], 2);
  EXPECT_EQ(j["config"]["n_key_value_heads"], 2);
  Result<std::unique_ptr<Model>> m = Model::load(*model);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(j["parameters"].get<int64_t>(), (*m)->parameter_count());
  EXPECT_EQ(j["hook_points"].size(), (*m)->hook_points().size());
}

TEST_F(Cli, ForwardDumpsLogitsAndActivations) {
  std::string out = test::temp_dir("fwd");
  auto r = run_mechscope({"forward", "--model", *model, "--tokens", "1,5,9,2,7", "--dump-logits",
                          out + "/logits.npy", "--cache", "blocks.*.attn.hook_pattern", "--dump-dir",
                          out + "/acts", "--top-k", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["top_k"].size(), 3u);
  Result<at::Tensor> logits = read_npy(out + "/logits.npy");
  ASSERT_TRUE(logits.ok()) << logits.error().message;
  EXPECT_EQ(logits->sizes(), (std::vector<int64_t>{5, 64}));
  Result<std::unique_ptr<Model>> m = Model::load(*model);
  ASSERT_TRUE(m.ok());
  at::Tensor expect = (*m)->forward((*m)->tokens_tensor({1, 5, 9, 2, 7}))[0];
  // Another process, the hooked (materialised attention) path: float32 in another order.
  EXPECT_TRUE(test::close_rel("CLI logits", *logits, expect, test::kReorderTol));
  EXPECT_EQ(j["top_k"][0]["id"].get<int64_t>(), expect[-1].argmax().item<int64_t>());
  Result<at::Tensor> pat = read_npy(out + "/acts/blocks.1.attn.hook_pattern.npy");
  ASSERT_TRUE(pat.ok()) << pat.error().message;
  EXPECT_EQ(pat->sizes(), (std::vector<int64_t>{1, 4, 5, 5}));
  EXPECT_TRUE(fs::exists(out + "/acts/blocks.0.attn.hook_pattern.npy"));
  EXPECT_FALSE(fs::exists(out + "/acts/blocks.0.attn.hook_z.npy"));
}

TEST_F(Cli, GenerateGreedyMatchesInProcess) {
  auto r = run_mechscope({"generate", "--model", *model, "--tokens", "3,4,5", "--max-new", "6",
                          "--greedy", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  Result<std::unique_ptr<Model>> m = Model::load(*model);
  ASSERT_TRUE(m.ok());
  GenerateOptions g;
  g.max_new = 6;
  EXPECT_EQ(j["new_ids"].get<std::vector<int32_t>>(), (*m)->generate({3, 4, 5}, g));
}

TEST_F(Cli, UsageErrorsExitWith2) {
  EXPECT_EQ(run_mechscope({"forward", "--model", *model}).exit_code, 2);  // no input
  EXPECT_EQ(run_mechscope({"forward", "--model", *model, "--tokens", "1,x"}).exit_code, 2);
  EXPECT_EQ(run_mechscope({"forward", "--model", *model, "--tokens", "1", "--bogus"}).exit_code, 2);
  EXPECT_EQ(run_mechscope({"info", "--model", *model, "--dtype", "f64"}).exit_code, 2);
  EXPECT_EQ(run_mechscope({"frobnicate"}).exit_code, 2);
  auto r = run_mechscope({"forward", "--model", *model, "--tokens", "1,2", "--cache", "nothing.*",
                          "--dump-dir", test::temp_dir("x")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("matches no hook point"), std::string::npos) << r.err;
  r = run_mechscope({"tokenize", "--model", *model, "--text", "hi"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no tokenizer"), std::string::npos) << r.err;
}

TEST_F(Cli, BadInputFilesExitWith3AndNameTheProblem) {
  struct Case {
    std::string name, file, content, expect;
  };
  std::vector<Case> cases{
      {"unknown-type", "config.json", R"({"model_type": "bert", "hidden_size": 8})", "unknown model_type 'bert'"},
      {"malformed", "config.json", R"({"model_type": "llama", )", "not valid JSON"},
      {"missing-field", "config.json", R"({"model_type": "llama", "hidden_size": 32})", "missing required field"},
      {"bad-heads", "config.json",
       R"({"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 3, "intermediate_size": 88, "vocab_size": 64})",
       "not a multiple"},
      {"wrong-shape", "config.json",
       R"({"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 90, "vocab_size": 64})",
       "config expects"},
      {"missing-tensor", "config.json",
       R"({"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 64})",
       "is missing"},
      {"truncated", "model.safetensors", "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", "model.safetensors"},
  };
  for (const Case& c : cases) {
    std::string d = variant(*model, c.name);
    test::write_file(d + "/" + c.file, c.content);
    auto r = run_mechscope({"info", "--model", d});
    EXPECT_EQ(r.exit_code, 3) << c.name << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.name << ": " << r.err;
  }
  auto r = run_mechscope({"info", "--model", *dir + "/does-not-exist"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("no such file"), std::string::npos);
}

// A safetensors file from a JSON header and raw data bytes.
std::string safetensors_bytes(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\0');
}

TEST_F(Cli, CorruptWeightsExitWith3) {
  struct Case {
    std::string name, bytes, expect;
  };
  std::vector<Case> cases{
      {"beyond", std::string("\xe8\x03\x00\x00\x00\x00\x00\x00{}", 10), "model.safetensors"},
      {"overlap",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
       "overlap"},
  };
  for (const Case& c : cases) {
    std::string d = variant(*model, c.name);
    test::write_file(d + "/model.safetensors", c.bytes);
    auto r = run_mechscope({"info", "--model", d});
    EXPECT_EQ(r.exit_code, 3) << c.name << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.name << ": " << r.err;
  }
  // Right shapes, wrong dtype: the embedding stored as int32.
  Result<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::open(*model + "/model.safetensors");
  ASSERT_TRUE(f.ok()) << f.error().message;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const std::string& n : (*f)->names()) {
    at::Tensor t = to_tensor(*(*f)->find(n), at::kFloat).clone();
    if (n == "model.embed_tokens.weight") t = t.to(at::kInt);
    tensors.emplace_back(n, t);
  }
  std::string d = variant(*model, "dtype");
  ASSERT_TRUE(write_safetensors(d + "/model.safetensors", tensors).ok());
  auto r = run_mechscope({"forward", "--model", d, "--tokens", "1,2"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("model.embed_tokens.weight"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("I32"), std::string::npos) << r.err;
}

TEST_F(Cli, PickleCheckpointsAreRefused) {
  std::string d = test::temp_dir("pickle");
  fs::copy(*model + "/config.json", d + "/config.json");
  test::write_file(d + "/pytorch_model.bin", "PK\x03\x04 not really a zip");
  auto r = run_mechscope({"info", "--model", d});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("pickle"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("safetensors"), std::string::npos) << r.err;
  r = run_mechscope({"info", "--model", d + "/pytorch_model.bin"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("execute"), std::string::npos) << r.err;
}

TEST_F(Cli, TokenizeAndGenerateWithARealTokenizer) {
  MS_REQUIRE_REFERENCE();
  std::string gguf = test::reference_dir() + "/stories260K-gguf/stories260K.gguf";
  auto r = run_mechscope({"tokenize", "--model", gguf, "--text", "Once upon a time", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"][0], 1);  // BOS
  r = run_mechscope({"generate", "--model", gguf, "--text", "Once upon a time", "--max-new", "20", "--greedy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u) << r.out;
}

}  // namespace
}  // namespace ms
