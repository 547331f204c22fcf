// The float32 inner loops of the fused attention kernel: a register-blocked tile product, row
// max, exp-and-sum (with or without the entropy's dot product) and scaling, in an AVX2/FMA version (chosen at run time when the CPU has it;
// the build targets plain x86-64) and a portable one the compiler vectorises for any target.
#pragma once

#include <cstdint>

namespace ms {

struct TileKernels {
  // C[m x n] (row stride ldc) = A[m x k] (lda) * B[k x n], or += when accumulate. B is read in
  // panels of 16 columns: panel j / 16 starts b_next * (j / 16) floats after b, its rows ldb apart
  // (a row-major B: ldb its row stride, b_next 16; K^T packed in 16-key blocks: ldb 16, b_next
  // dh * 16). n must be a multiple of 16 (callers pad B and C).
  void (*gemm)(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t b_next, float* c, int64_t ldc,
               int64_t m, int64_t k, int64_t n, bool accumulate);
  // Largest of x[0..n), n >= 1.
  float (*max)(const float* x, int64_t n);
  // x[i] = exp(x[i] - shift) for i < n; returns their sum (accumulated in float).
  float (*exp_sum)(float* x, int64_t n, float shift);
  // As exp_sum, and *dot = the sum of exp(x[i] - shift) * (x[i] - shift) (the entropy's term),
  // from the same exponentials (x[i] as exp_sum writes it).
  float (*exp_sum_dot)(float* x, int64_t n, float shift, float* dot);
  // y[i] *= s for i < n.
  void (*scale)(float* y, int64_t n, float s);
  // Soft-capping (Gemma 2): x[i] = cap * tanh(x[i] / cap) for i < n.
  void (*softcap)(float* x, int64_t n, float cap);
  // Decode (one query per head): s[r * lds + j] = dot(q + r * dh, k + j * k_stride) for r < rows,
  // j < nk, reading each key row once for all rows (no transposed copy of K).
  void (*dots)(const float* q, int64_t rows, int64_t dh, const float* k, int64_t k_stride, int64_t nk, float* s,
               int64_t lds);
  // Decode: acc[r * dh + d] += sum_j p[r * lds + j] * v[j * v_stride + d], reading V in blocks of
  // keys that stay in L1 while every row uses them.
  void (*axpys)(const float* p, int64_t lds, int64_t rows, int64_t nk, const float* v, int64_t v_stride, int64_t dh,
                float* acc);
  // dst[0..n) = src[0..n) with non-temporal stores where the CPU has them (dst 64-byte aligned, n a
  // multiple of 16): data read back only much later, kept out of the caches and without the line
  // reads a normal store makes first.
  void (*stream_copy)(float* dst, const float* src, int64_t n);
  const char* name;  // "avx512", "avx2" or "portable"
};

// The widest kernels the CPU supports (AVX-512 tile products, else AVX2/FMA), unless portable is
// set or the environment's MECHSCOPE_ATTENTION_KERNELS caps them (avx2, portable).
const TileKernels& tile_kernels(bool portable = false);

}  // namespace ms
