// ms::gelu_tanh (core/base/gelu.h): every kernel set against a float64 evaluation of GELU's tanh
// approximation, and against ATen's at::gelu(x, "tanh") at the scale of the output.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "core/base/gelu.h"

namespace {

// float64: 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x + 0.044715 x^3), written x / (1 + exp(-2u)):
// 1 + tanh(u) cancels to 0 in float64 too once u < -18.5 (x < -7.1), where the function is still
// 1e-16. The identity itself is checked against the tanh form where that form is accurate.
at::Tensor reference(const at::Tensor& x) {
  const at::Tensor d = x.to(at::kDouble), u = 0.7978845608028654 * (d + 0.044715 * d * d * d);
  const at::Tensor r = d / (1 + at::exp(-2 * u));
  const at::Tensor tanh_form = 0.5 * d * (1 + at::tanh(u)), mid = d.abs() <= 2;
  EXPECT_LT(((r - tanh_form).abs() * mid).max().item<double>(), 1e-14);
  return r;
}

TEST(Gelu, EveryKernelSetEqualsFloat64) {
  // Dense over [-12, 12] (both tails, the cancellation region of 1 + tanh near x = -3), random
  // values, and lengths that leave vector tails.
  at::Tensor grid = at::linspace(-12, 12, 48001);
  at::manual_seed(5);
  at::Tensor rnd = at::randn({1003}) * 3;
  for (const char* set : {"", "avx2", "portable"})
    for (const at::Tensor& x : {grid, rnd, grid.narrow(0, 0, 7)}) {
      at::Tensor y = at::empty_like(x);
      ms::gelu_tanh(x.data_ptr<float>(), y.data_ptr<float>(), x.numel(), set);
      const at::Tensor ref = reference(x);
      // Relative to each value: the function's condition number |x gelu'(x) / gelu(x)| is at most
      // about 1 + 2|u| (under 40 on [-12, 12]) times float32's rounding of x, u and exp (a few
      // ulp): 40 * 4 * 2^-23 = 2e-5. Values below 1e-30 (x < -11) are compared absolutely.
      const at::Tensor err = (y.to(at::kDouble) - ref).abs();
      const at::Tensor ok = err <= 2e-5 * ref.abs() + 1e-30;
      EXPECT_TRUE(ok.all().item<bool>()) << ms::gelu_kernels(set) << ": worst relative error "
                                         << (err / (ref.abs() + 1e-30)).max().item<double>() << " at x = "
                                         << x[(err / (ref.abs() + 1e-30)).argmax()].item<double>() << " (gelu "
                                         << y[(err / (ref.abs() + 1e-30)).argmax()].item<double>() << ", float64 "
                                         << ref[(err / (ref.abs() + 1e-30)).argmax()].item<double>() << ")";
      // And ATen's float32 version agrees at the output's scale (its 1 + tanh cancels below x = -2).
      EXPECT_LT((y - at::gelu(x, "tanh")).abs().max().item<double>(), 1e-6 * ref.abs().max().item<double>() + 1e-30)
          << ms::gelu_kernels(set);
    }
}

TEST(Gelu, InPlaceAndNamed) {
  at::Tensor x = at::linspace(-4, 4, 1001), y = x.clone();
  ms::gelu_tanh(y.data_ptr<float>(), y.data_ptr<float>(), y.numel());
  at::Tensor z = at::empty_like(x);
  ms::gelu_tanh(x.data_ptr<float>(), z.data_ptr<float>(), x.numel());
  EXPECT_TRUE(y.equal(z));
  EXPECT_EQ(std::string(ms::gelu_kernels("portable")), "portable");
}

}  // namespace
