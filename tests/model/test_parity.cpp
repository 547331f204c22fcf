// Parity with the independent float64 Python reference (scripts/reference/): every fixture in
// tests/fixtures/parity (gpt2, gpt_neox, llama, mistral, qwen2, qwen3, phi3, olmo2, gemma2,
// gemma3_text in the Hugging Face layout) must give the same logits and the same activation at
// every TransformerLens hook point, and have exactly the reference's hook points.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "core/model/model.h"
#include "core/io/npy.h"
#include "hooks/activation_cache.h"
#include "tests/support/numerics.h"
#include "tests/support/test_support.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

// max |ours - ref| / max |ref| over finite reference entries; -inf entries (masked attention
// scores) must be -inf in ours too.
double relative_error(const at::Tensor& ours_in, const at::Tensor& ref_in, std::string* why) {
  at::Tensor ours = ours_in.to(at::kDouble), ref = ref_in.to(at::kDouble);
  if (ours.sizes() != ref.sizes()) {
    *why = "shape " + std::string(c10::str(ours.sizes())) + " vs reference " + std::string(c10::str(ref.sizes()));
    return 1e30;
  }
  at::Tensor finite = at::isfinite(ref);
  if (!at::equal(at::isfinite(ours), finite) ||
      !at::equal(ours.masked_select(finite.logical_not()), ref.masked_select(finite.logical_not()))) {
    *why = "masked (-inf) entries differ";
    return 1e30;
  }
  at::Tensor r = ref.masked_select(finite), o = ours.masked_select(finite);
  double scale = std::max(r.abs().max().item<double>(), 1e-30);
  return (o - r).abs().max().item<double>() / scale;
}

class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, LogitsAndEveryHookMatchTheReference) {
  const fs::path dir = fs::path(test::fixtures_dir()) / "parity" / GetParam();
  ASSERT_TRUE(fs::exists(dir / "config.json")) << dir;
  Result<std::unique_ptr<Model>> m = Model::load(dir.string());
  ASSERT_TRUE(m.ok()) << m.error().message;
  nlohmann::json tj = nlohmann::json::parse(test::read_file((dir / "reference" / "tokens.json").string()));
  std::vector<std::vector<int64_t>> ids = tj["input_ids"].get<std::vector<std::vector<int64_t>>>();
  at::Tensor tokens = at::empty({static_cast<int64_t>(ids.size()), static_cast<int64_t>(ids[0].size())}, at::kLong);
  for (size_t b = 0; b < ids.size(); ++b)
    for (size_t t = 0; t < ids[b].size(); ++t) tokens[b][t] = ids[b][t];

  HookRegistry reg;
  ActivationCache cache;
  reg.add_forward("*", cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &reg;
  at::Tensor logits = (*m)->forward(tokens, fo);
  // Without hooks the logits are the same computation (hooks must not change anything).
  at::Tensor plain = (*m)->forward(tokens);

  int compared = 0;
  double worst = 0;
  for (const auto& entry : fs::directory_iterator(dir / "reference")) {
    if (entry.path().extension() != ".npy") continue;
    std::string name = entry.path().stem().string();
    Result<at::Tensor> ref = read_npy(entry.path().string());
    ASSERT_TRUE(ref.ok()) << ref.error().message;
    at::Tensor ours;
    if (name == "logits") {
      ours = logits;
    } else {
      ASSERT_TRUE(cache.contains(name)) << GetParam() << ": no hook point " << name;
      ours = cache[name];
    }
    std::string why;
    double err = relative_error(ours, *ref, &why);
    std::printf("  %-22s %-40s max rel err %.2e %s\n", GetParam().c_str(), name.c_str(), err, why.c_str());
    EXPECT_LT(err, test::kF32VsF64Tol) << GetParam() << " " << name << " " << why;
    worst = std::max(worst, err);
    ++compared;
  }
  EXPECT_GT(compared, 5);
  if (!fs::exists(dir / "reference" / "blocks.0.attn.hook_q.npy")) return;  // a loader variant: a reduced set
  // Every hook point the model has is one the reference computes, and the other way round.
  std::set<std::string> ours_names, ref_names;
  for (const std::string& n : (*m)->hook_points().names()) ours_names.insert(n);
  for (const auto& entry : fs::directory_iterator(dir / "reference"))
    if (entry.path().extension() == ".npy" && entry.path().stem() != "logits") ref_names.insert(entry.path().stem().string());
  EXPECT_EQ(ours_names, ref_names) << GetParam() << ": hook points differ from the reference's";
  // Fused vs. hooked arithmetic (materialised attention, per-head results): float32 reordering.
  EXPECT_TRUE(test::close_rel(GetParam() + " plain vs hooked logits", plain, logits, test::kReorderTol));
  std::printf("%s: %d tensors compared, worst max rel err %.2e (tolerance 1e-4)\n", GetParam().c_str(),
              compared, worst);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Parity,
                         ::testing::Values("gpt2", "gpt2-noprefix", "gpt_neox-parallel",
                                           "gpt_neox-sequential", "llama-gqa", "llama-headdim",
                                           "mistral-window", "qwen2", "llama-bf16", "llama-sharded",
                                           "qwen3", "qwen3-tied-bias", "phi3", "olmo2", "gemma2", "gemma3"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

}  // namespace
}  // namespace ms
