// Comparing float32 results in tests: differences relative to the scale of what is compared, with
// tolerances that come from float32's rounding (named below, each with its reason), never from one
// machine's rounding. Every comparison prints its figures ("numeric: ..."), so a run under another
// OpenBLAS core type or thread count shows how far it is from its tolerance.
#pragma once

#include <ATen/core/Tensor.h>
#include <gtest/gtest.h>

#include <string>

namespace ms::test {

// float32 machine epsilon (2^-23): the spacing of floats at 1, twice the unit roundoff.
constexpr double kF32Eps = 1.1920928955078125e-07;

// The same float32 computation in another order: other GEMM blocking (query blocks, batch
// shapes), another thread count, another OpenBLAS kernel (FMA or not), ATen's vectorised
// reductions at another width. A dot product of length n then differs by at most about
// 2 n eps times the sum of its |terms| (Higham's gamma_n bound for each order), and in practice by
// sqrt(n) eps; the tiny test models (d_model 32, d_mlp 64, T <= 24, 2-3 layers of weights with
// std 0.3) carry such a difference through the layers after it, growing it by the norm of each
// layer's Jacobian. 256 eps (3e-5) of the output's scale is 2 n eps for n = 128, the widest sum
// in those models, and far below any bug (a wrong mask, position or head moves results by more
// than 1e-2 of their scale).
constexpr double kReorderTol = 256 * kF32Eps;

// float32 against the float64 reference (scripts/reference): the float32 run's own rounding
// through a whole forward pass of a small real-layout model (up to 4 layers, d_model <= 64,
// 9 positions, bf16 weights read as they are): 1e-4 of the scale (~840 eps).
constexpr double kF32VsF64Tol = 1e-4;

struct Closeness {
  double diff = 0;   // max |a - ref|
  double scale = 0;  // max |ref| (at least `floor`)
  double rel() const { return diff / scale; }
};

// max |a - ref| and max |ref| over entries where ref is finite; non-finite entries must be equal
// (diff = inf otherwise). Shapes must match (diff = inf otherwise). `floor` bounds the scale from
// below (for results that should be ~0, give the scale of the quantities they came from).
Closeness closeness(const at::Tensor& a, const at::Tensor& ref, double floor = 0);

// EXPECT_TRUE(close_rel("logits gpt2", a, ref, kReorderTol)): max |a - ref| <= rtol * max |ref|;
// prints "numeric: <what>: max diff D of scale S = R (tolerance T, P% of it)".
::testing::AssertionResult close_rel(const std::string& what, const at::Tensor& a, const at::Tensor& ref,
                                     double rtol, double floor = 0);
// Scalars: |a - ref| <= rtol * scale, where scale is the magnitude of the quantities a and ref
// were computed from (a sum of terms, a metric range), given by the caller with its reason.
::testing::AssertionResult close_rel(const std::string& what, double a, double ref, double rtol, double scale);

// One line naming the numerics this process runs with: OpenBLAS core type and threads, LibTorch's
// intra-op threads and CPU capability (ATen kernels), and the environment that chose them.
std::string numeric_environment();

}  // namespace ms::test
