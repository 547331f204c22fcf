// The same forward pass on CUDA: logits and every hook point match the CPU run. Skips cleanly
// when LibTorch has no CUDA or no GPU is visible (CI never has one).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/model/model.h"
#include "hooks/activation_cache.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

TEST(Cuda, ForwardMatchesCpu) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA in this LibTorch build or no GPU visible; skipped";
  for (const char* fixture : {"gpt2", "gpt_neox-parallel", "llama-gqa", "mistral-window"}) {
    std::string dir = test::fixtures_dir() + "/parity/" + fixture;
    LoadOptions cuda;
    cuda.device = "cuda";
    Result<std::unique_ptr<Model>> cpu_model = Model::load(dir), gpu_model = Model::load(dir, cuda);
    ASSERT_TRUE(cpu_model.ok()) << cpu_model.error().message;
    ASSERT_TRUE(gpu_model.ok()) << gpu_model.error().message;
    at::Tensor toks = at::randint(0, 97, {2, 9}, at::kLong);
    HookRegistry rc, rg;
    ActivationCache cc, cg;
    rc.add_forward("*", cache_hook(cc));
    rg.add_forward("*", cache_hook(cg));
    ForwardOptions oc, og;
    oc.hooks = &rc;
    og.hooks = &rg;
    at::Tensor a = (*cpu_model)->forward(toks, oc), b = (*gpu_model)->forward(toks, og).cpu();
    EXPECT_LT((a - b).abs().max().item<double>() / a.abs().max().item<double>(), 1e-4) << fixture;
    for (const auto& [name, t] : cc.items()) {
      at::Tensor g = cg[name].cpu().to(at::kDouble), c = t.to(at::kDouble);
      at::Tensor finite = at::isfinite(c);
      double scale = std::max(c.masked_select(finite).abs().max().item<double>(), 1e-12);
      EXPECT_LT((g - c).masked_select(finite).abs().max().item<double>() / scale, 1e-4) << fixture << " " << name;
    }
  }
}

}  // namespace
}  // namespace ms
