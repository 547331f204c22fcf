// The real stories260K model (Llama 2 architecture, GGUF, in ../shared/reference) against
// llama2.c's reference run.c: logits at positions 0..15, 200 greedy steps from BOS, and 64 greedy
// steps after "Once upon a time", with the tokenizer embedded in the GGUF.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/model/model.h"
#include "tests/support/numerics.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

class Stories260K : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::reference_dir().empty()) GTEST_SKIP() << "../shared/reference is absent; skipped";
    ref = test::reference_dir() + "/stories260K/";
    Result<std::unique_ptr<Model>> m = Model::load(test::reference_dir() + "/stories260K-gguf/stories260K.gguf");
    ASSERT_TRUE(m.ok()) << m.error().message;
    model = std::move(*m);
    ASSERT_NE(model->tokenizer(), nullptr);
    data = nlohmann::json::parse(test::read_file(ref + "reference_logits_run_c.json"));
  }
  std::string ref;
  std::unique_ptr<Model> model;
  nlohmann::json data;
};

TEST_F(Stories260K, ConfigFromGguf) {
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.d_mlp, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.d_head, 8);
  EXPECT_EQ(c.d_vocab, 512);
  // The model ties its embeddings; the GGUF stores output.weight as a copy of token_embd.
  EXPECT_TRUE(at::equal(model->weights().w_u, model->weights().w_e));
}

TEST_F(Stories260K, LogitsMatchRunC) {
  c10::InferenceMode guard;
  std::vector<int32_t> ids = data["greedy_from_bos_ids"].get<std::vector<int32_t>>();
  std::vector<int32_t> first(ids.begin(), ids.begin() + 16);
  at::Tensor logits = model->forward(model->tokens_tensor(first))[0];  // (16, 512)
  std::vector<at::Tensor> ours, theirs;
  for (const auto& row : data["logits_fp32"]) {
    int64_t pos = row["pos"].get<int64_t>();
    ASSERT_EQ(row["input_id"].get<int32_t>(), first[static_cast<size_t>(pos)]);
    ours.push_back(logits[pos]);
    theirs.push_back(at::tensor(row["logits"].get<std::vector<float>>()));
  }
  // Two float32 implementations of the same model (run.c sums in its own order, with its own
  // expf and sqrtf): each within float32 rounding of the exact logits, so within the reordering
  // bound of each other, relative to the logits' scale.
  EXPECT_TRUE(test::close_rel("stories260K logits vs run.c, positions 0..15", at::stack(ours), at::stack(theirs),
                              test::kReorderTol));
}

TEST_F(Stories260K, Greedy200StepsFromBos) {
  c10::InferenceMode guard;
  std::vector<int32_t> ids = data["greedy_from_bos_ids"].get<std::vector<int32_t>>();
  GenerateOptions g;
  g.max_new = 200;
  g.stop_at_eos = false;
  std::vector<int32_t> out = model->generate({1}, g);
  EXPECT_EQ(out, std::vector<int32_t>(ids.begin() + 1, ids.end()));
  std::string expected = test::read_file(ref + "expected_greedy_200steps_from_llama2c_test_all.txt");
  EXPECT_EQ(model->tokenizer()->decode(out), expected);
}

TEST_F(Stories260K, Greedy64StepsAfterOnceUponATime) {
  c10::InferenceMode guard;
  std::vector<int32_t> prompt = model->tokenizer()->encode("Once upon a time", true);
  ASSERT_FALSE(prompt.empty());
  EXPECT_EQ(prompt[0], 1);  // BOS
  // run.c's "steps" counts positions from BOS, prompt included: 64 steps print the prompt's
  // tokens after BOS and then generate the rest.
  GenerateOptions g;
  g.max_new = 64 - static_cast<int64_t>(prompt.size() - 1);
  g.stop_at_eos = false;
  std::vector<int32_t> out = model->generate(prompt, g);
  std::vector<int32_t> all(prompt.begin() + 1, prompt.end());
  all.insert(all.end(), out.begin(), out.end());
  std::string expected = test::read_file(ref + "expected_greedy_64steps_prompt_Once_upon_a_time.txt");
  EXPECT_EQ(model->tokenizer()->decode(all), expected);
}

}  // namespace
}  // namespace ms
