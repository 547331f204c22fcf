// ms::gemv (core/base/gemv.h), the decode step's weight products: every kernel set the CPU has
// against a float64 product, rows split over threads equal to one thread bit for bit, and a
// decode step's logits through it against at::linear's.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <string>

#include "core/base/gemv.h"
#include "core/model/model.h"
#include "tests/support/numerics.h"
#include "tests/support/tiny_models.h"

namespace {

TEST(Gemv, EveryKernelSetEqualsFloat64Product) {
  at::manual_seed(11);
  struct Case { int64_t n, k, ldw; bool bias; };
  const Case cases[] = {{1, 1, 1, false}, {7, 5, 5, true},     {9, 17, 20, false},   {64, 1024, 1024, true},
                        {1000, 33, 40, true}, {129, 4096, 4096, false}, {3, 16, 16, true}, {17, 31, 31, false}};
  for (const char* set : {"", "avx2", "portable"})
    for (const Case& c : cases) {
      at::Tensor w = at::randn({c.n, c.ldw}), x = at::randn({c.k}), b = at::randn({c.n});
      at::Tensor y = at::empty({c.n});
      ms::gemv(w.data_ptr<float>(), c.ldw, x.data_ptr<float>(), c.bias ? b.data_ptr<float>() : nullptr,
               y.data_ptr<float>(), c.n, c.k, set);
      at::Tensor wd = w.narrow(1, 0, c.k).to(at::kDouble), xd = x.to(at::kDouble);
      at::Tensor ref = at::mv(wd, xd) + (c.bias ? b.to(at::kDouble) : at::zeros({c.n}, at::kDouble));
      // Float sums of k products in any order differ from the exact sum by at most about
      // k * 2^-24 * sum |w x| (plus the bias' rounding): a bound, not one machine's rounding.
      at::Tensor bound = (at::mv(wd.abs(), xd.abs()) + b.to(at::kDouble).abs()) * (double(c.k + 2) / (1 << 24));
      at::Tensor err = (y.to(at::kDouble) - ref).abs();
      EXPECT_TRUE((err <= bound).all().item<bool>())
          << ms::gemv_kernels(set) << " n " << c.n << " k " << c.k << ": worst error "
          << (err / bound).max().item<double>() << " of the bound";
      // And well inside it in practice (the blocked sums' errors grow as about sqrt(k)).
      EXPECT_LT((err / (at::mv(wd.abs(), xd.abs()) + 1e-30)).max().item<double>(), 1e-5) << ms::gemv_kernels(set);
    }
}

TEST(Gemv, ThreadsSplitRowsWithoutChangingThem) {
  at::manual_seed(12);
  const int64_t n = 4099, k = 1024;
  at::Tensor w = at::randn({n, k}), x = at::randn({k}), b = at::randn({n});
  at::Tensor y1 = at::empty({n}), y2 = at::empty({n});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  ms::gemv(w.data_ptr<float>(), k, x.data_ptr<float>(), b.data_ptr<float>(), y1.data_ptr<float>(), n, k);
  at::set_num_threads(2);
  ms::gemv(w.data_ptr<float>(), k, x.data_ptr<float>(), b.data_ptr<float>(), y2.data_ptr<float>(), n, k);
  at::set_num_threads(before);
  EXPECT_TRUE(y1.equal(y2));  // each row is summed by one thread in one order, whichever thread
}

TEST(Gemv, KernelSetsNamed) {
  const std::string widest = ms::gemv_kernels(), narrow = ms::gemv_kernels("avx2");
  EXPECT_TRUE(widest == "avx2" || widest == "portable") << widest;
  EXPECT_TRUE(narrow == "avx2" || narrow == "portable") << narrow;
  EXPECT_EQ(std::string(ms::gemv_kernels("portable")), "portable");
}

// A decode step of one sequence takes gemv for its weight products; its logits equal those of the
// whole sequence run without a cache (GEMM) within the reordering tolerance (tests/support/numerics.h), for every family.
TEST(Gemv, DecodeStepsTakeItAndEqualTheFullForward) {
  at::manual_seed(13);
  for (const char* fam : {"gpt2", "llama", "gemma2", "phi3", "qwen3", "olmo2"}) {
    auto m = ms::test::tiny_model(fam, 5);
    at::Tensor toks = at::randint(0, 50, {1, 12}, at::kLong);
    ms::KVCache cache = m->make_cache(1, 12);
    ms::ForwardOptions o;
    o.cache = &cache;
    m->forward(toks.narrow(1, 0, 8), o);
    const int64_t calls = ms::gemv_calls();
    at::Tensor last;
    for (int64_t t = 8; t < 12; ++t) last = m->forward(toks.narrow(1, t, 1), o);
    EXPECT_GT(ms::gemv_calls(), calls) << fam << ": the decode steps did not take gemv";
    at::Tensor full = m->forward(toks).narrow(1, 11, 1);
    EXPECT_TRUE(ms::test::close_rel(std::string(fam) + " decoded logits", last, full, ms::test::kReorderTol));
  }
}

}  // namespace
