// GEMV kernels (core/base/gemv.h): AVX-512 and AVX2/FMA versions compiled with target attributes
// (the build targets plain x86-64) and chosen once from the CPU's features; a portable version.
#include "core/base/gemv.h"

#include <algorithm>
#include <atomic>

#include "core/base/kernel_set.h"
#include "core/base/parallel.h"

#include "core/base/simd_math.h"

namespace ms {
namespace {

using RowsKernel = void (*)(const float* w, int64_t ldw, const float* x, const float* b, float* y, int64_t n,
                            int64_t k);

void rows_portable(const float* w, int64_t ldw, const float* x, const float* b, float* y, int64_t n, int64_t k) {
  for (int64_t i = 0; i < n; ++i) {
    const float* r = w + i * ldw;
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // eight partial sums the compiler vectorises
    int64_t j = 0;
    for (; j + 8 <= k; j += 8)
      for (int t = 0; t < 8; ++t) s[t] += r[j + t] * x[j + t];
    float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; j < k; ++j) t += r[j] * x[j];
    y[i] = b ? t + b[i] : t;
  }
}

#ifdef MS_HAVE_X86
using simd::hsum8;

// R rows at once: one load of x feeds R FMAs; the tail of k (k % 8) in scalar.
template <int R>
MS_AVX2 void block_avx2(const float* w, int64_t ldw, const float* x, const float* b, float* y, int64_t k) {
  __m256 a[R];
  for (int r = 0; r < R; ++r) a[r] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    const __m256 xv = _mm256_loadu_ps(x + j);
    for (int r = 0; r < R; ++r) a[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + r * ldw + j), xv, a[r]);
  }
  for (int r = 0; r < R; ++r) {
    float t = hsum8(a[r]);
    for (int64_t jj = j; jj < k; ++jj) t += w[r * ldw + jj] * x[jj];
    y[r] = b ? t + b[r] : t;
  }
}

MS_AVX2 void rows_avx2(const float* w, int64_t ldw, const float* x, const float* b, float* y, int64_t n, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) block_avx2<8>(w + i * ldw, ldw, x, b ? b + i : nullptr, y + i, k);
  for (; i < n; ++i) block_avx2<1>(w + i * ldw, ldw, x, b ? b + i : nullptr, y + i, k);
}

// One row at a time, four accumulators over consecutive 64-float stretches: the weights are read
// as one sequential stream, which a core's prefetchers follow (8 rows interleaved, one load of x
// for 8 FMAs, were 8 streams of a few KiB each, restarting the prefetchers at every block; a
// decode step at 1 thread went from 1.52-1.58x to 1.07-1.29x its copy floor on a Zen 4).
// bench_retrieval's "GEMV alone" line sets it against a read of the same bytes. x stays in L1.
MS_AVX512 void row_avx512(const float* w, const float* x, const float* b, float* y, int64_t k) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t j = 0;
  for (; j + 64 <= k; j += 64) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j + 16), _mm512_loadu_ps(x + j + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j + 32), _mm512_loadu_ps(x + j + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j + 48), _mm512_loadu_ps(x + j + 48), a3);
  }
  for (; j + 16 <= k; j += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), a0);
  if (j < k) {  // the tail under a mask
    const __mmask16 m = simd::tail_mask16(k - j);
    a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + j), _mm512_maskz_loadu_ps(m, x + j), a1);
  }
  const float t = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  *y = b ? t + *b : t;
}

MS_AVX512 void rows_avx512(const float* w, int64_t ldw, const float* x, const float* b, float* y, int64_t n,
                           int64_t k) {
  for (int64_t i = 0; i < n; ++i) row_avx512(w + i * ldw, x, b ? b + i : nullptr, y + i, k);
}
#endif

std::atomic<int64_t> g_calls{0};

RowsKernel rows_kernel(KernelSet set) {
#ifdef MS_HAVE_X86
  if (set == KernelSet::kAvx512) return rows_avx512;
  if (set == KernelSet::kAvx2) return rows_avx2;
#endif
  (void)set;
  return rows_portable;
}

}  // namespace

void gemv(const float* w, int64_t ldw, const float* x, const float* b, float* y, int64_t n, int64_t k,
          const char* set) {
  const RowsKernel f = rows_kernel(kernel_set(set));
  g_calls.fetch_add(1, std::memory_order_relaxed);
  // At least 64 rows (and 64 KiB of weights) a thread: below that, starting the team costs more
  // than the rows.
  const int64_t grain = std::max<int64_t>(64, (64 * 1024 / 4 + k - 1) / std::max<int64_t>(1, k));
  ms::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    f(w + begin * ldw, ldw, x, b ? b + begin : nullptr, y + begin, end - begin, k);
  });
}

int64_t gemv_calls() { return g_calls.load(std::memory_order_relaxed); }

const char* gemv_kernels(const char* set) { return kernel_set_name(kernel_set(set)); }

}  // namespace ms
