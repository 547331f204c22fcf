// Matrix-vector product for a decode step's weight products: y = W x (+ b), W (n, k) row-major
// float32, each weight read once in one streaming pass, rows split over the threads.
//
// Why not OpenBLAS' sgemv (at::mv / at::addmv): on the development machine it read the weights at
// about two thirds of the copy bandwidth, and a decode step is nothing but that read (issue 18
// item 5). Here each thread walks contiguous rows, one row at a time (the weights one sequential
// stream), in 256-bit AVX2/FMA vectors on AVX2 and AVX-512 machines alike (512-bit loads read
// slower on a Zen 4; gemv.cpp), or a portable loop.
#pragma once

#include <cstdint>

namespace ms {

// y[i] = sum_j w[i * ldw + j] * x[j] (+ b[i] when b is not null), i < n, j < k. Threads: the
// process's (ms::parallel_for), rows split in contiguous chunks; inline when called from a worker.
// The sums are in float with another order than sgemv's (equal to about 1e-6 relative).
// set: "" for the widest the CPU has (MECHSCOPE_ATTENTION_KERNELS=avx2 or =portable caps it, as
// it caps the attention kernels), or "avx2" / "portable" to ask for a narrower one (tests).
void gemv(const float* w, int64_t ldw, const float* x, const float* b, float* y, int64_t n, int64_t k,
          const char* set = "");

// How many times gemv has run in this process (tests: the decode path takes it).
int64_t gemv_calls();

// Which kernels gemv runs for set: "avx2" (also where the CPU has AVX-512) or "portable".
const char* gemv_kernels(const char* set = "");

}  // namespace ms
