// GEMV kernels (core/base/gemv.h): an AVX2/FMA version compiled with a target attribute (the build
// targets plain x86-64), run where the CPU has AVX2 (AVX-512 ones too); a portable version.
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

// One row at a time in 256-bit vectors, four accumulators over consecutive 32-float stretches: the
// weights are read as one sequential stream, which a core's prefetchers follow, and x stays in L1.
// Measured on a Zen 4 at 2 threads over 486 MB of rows of 1024 (bench_retrieval's "GEMV alone"
// line, against a read of the same bytes): eight rows interleaved (one load of x for eight FMAs)
// were eight streams of a few KiB and restarted the prefetchers at every block; the same one-row
// loop with 512-bit loads read at 71-88% of the read, with 256-bit ones at 95-104%. A GEMV is a
// read of its weights, so wider FMAs buy nothing: AVX-512 machines run this kernel too.
MS_AVX2 void rows_avx2(const float* w, int64_t ldw, const float* x, const float* b, float* y, int64_t n, int64_t k) {
  for (int64_t i = 0; i < n; ++i) {
    const float* r = w + i * ldw;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t j = 0;
    for (; j + 32 <= k; j += 32) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r + j), _mm256_loadu_ps(x + j), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r + j + 8), _mm256_loadu_ps(x + j + 8), a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r + j + 16), _mm256_loadu_ps(x + j + 16), a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r + j + 24), _mm256_loadu_ps(x + j + 24), a3);
    }
    for (; j + 8 <= k; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r + j), _mm256_loadu_ps(x + j), a0);
    float t = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; j < k; ++j) t += r[j] * x[j];
    y[i] = b ? t + b[i] : t;
  }
}
#endif

std::atomic<int64_t> g_calls{0};

RowsKernel rows_kernel(KernelSet set) {
#ifdef MS_HAVE_X86
  if (set == KernelSet::kAvx512 || set == KernelSet::kAvx2) return rows_avx2;
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

const char* gemv_kernels(const char* set) {
  const KernelSet s = kernel_set(set);  // AVX-512 machines run the 256-bit kernel (rows_avx2)
  return kernel_set_name(s == KernelSet::kAvx512 ? KernelSet::kAvx2 : s);
}

}  // namespace ms
