// GELU with the tanh approximation (GPT-2's gelu_new, Gemma's gelu_pytorch_tanh) over float32,
// vectorised and split over the threads. ATen's at::gelu(x, "tanh") took 6.5% of the GPT-2-shaped
// forward at T = 512 once OpenBLAS' AVX-512 GEMMs had halved the rest (issue 18's >= 80% target).
//
// It computes 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x + 0.044715 x^3), as x / (1 + exp(-2u))
// (the same function: 1 + tanh(u) = 2 / (1 + exp(-2u))), which keeps its relative accuracy where
// 1 + tanh(u) cancels (x below about -2): a few ulp everywhere against a float64 reference.
#pragma once

#include <cstdint>

namespace ms {

// y[i] = gelu_tanh(x[i]) for i < n (y may be x). set: "" for the widest kernels the CPU has
// (MECHSCOPE_ATTENTION_KERNELS=avx2 or =portable caps them), or "avx2" / "portable" (tests).
void gelu_tanh(const float* x, float* y, int64_t n, const char* set = "");

// Which kernels gelu_tanh runs for set: "avx512", "avx2" or "portable".
const char* gelu_kernels(const char* set = "");

}  // namespace ms
