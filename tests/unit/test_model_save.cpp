// Saving in the Hugging Face layout is the inverse of loading: every architecture family
// round-trips to the same logits, attention-only models included.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/model/model_save.h"
#include "tests/support/numerics.h"
#include "tests/support/test_support.h"
#include "tests/support/tiny_models.h"

namespace ms {
namespace {

TEST(ModelSave, RoundTripGivesTheSameLogits) {
  for (const char* fam : {"gpt2", "neox", "llama", "mistral", "attn_only"}) {
    auto m = test::tiny_model(fam, 11);
    std::string dir = test::temp_dir("save") + "/model";
    Status st = save_model_hf(m->config(), m->weights(), dir, {{"zoo.json", "{}\n"}});
    ASSERT_TRUE(st.ok()) << st.error().message;
    EXPECT_TRUE(std::filesystem::exists(dir + "/zoo.json"));
    EXPECT_FALSE(std::filesystem::exists(dir + ".tmp"));
    Result<std::unique_ptr<Model>> back = Model::load(dir);
    ASSERT_TRUE(back.ok()) << fam << ": " << back.error().message;
    at::Tensor toks = at::randint(0, 50, {2, 9}, at::kLong);
    at::Tensor a = m->forward(toks), b = (*back)->forward(toks);
    // The same float32 weights; a loaded layout may take another GEMM path (transposed views).
    EXPECT_TRUE(test::close_rel(std::string(fam) + " logits after a round trip", b, a, test::kReorderTol));
    // Saving over an existing folder is refused unless asked for.
    EXPECT_FALSE(save_model_hf(m->config(), m->weights(), dir).ok());
    EXPECT_TRUE(save_model_hf(m->config(), m->weights(), dir, {}, true).ok());
  }
}

}  // namespace
}  // namespace ms
