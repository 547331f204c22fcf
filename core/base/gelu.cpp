// GELU (tanh approximation) kernels: core/base/gelu.h.
#include "core/base/gelu.h"

#include <algorithm>
#include <cmath>

#include "core/base/kernel_set.h"
#include "core/base/parallel.h"
#include "core/base/simd_math.h"

namespace ms {
namespace {

using Kernel = void (*)(const float* x, float* y, int64_t n);

constexpr float kC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kA = 0.044715f;

void gelu_portable(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i], u = kC * (v + kA * v * v * v);
    y[i] = v / (1.0f + std::exp(std::min(-2.0f * u, 88.0f)));
  }
}

#ifdef MS_HAVE_X86
MS_AVX2 void gelu_avx2(const float* x, float* y, int64_t n) {
  const __m256 c2 = _mm256_set1_ps(-2.0f * kC), a = _mm256_set1_ps(kA), one = _mm256_set1_ps(1.0f),
               hi = _mm256_set1_ps(88.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 t = _mm256_mul_ps(c2, _mm256_fmadd_ps(_mm256_mul_ps(a, v), _mm256_mul_ps(v, v), v));  // -2u
    const __m256 e = simd::exp8(_mm256_min_ps(t, hi));
    _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
  }
  gelu_portable(x + i, y + i, n - i);
}

MS_AVX512 void gelu_avx512(const float* x, float* y, int64_t n) {
  const __m512 c2 = _mm512_set1_ps(-2.0f * kC), a = _mm512_set1_ps(kA), one = _mm512_set1_ps(1.0f),
               hi = _mm512_set1_ps(88.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 t = _mm512_mul_ps(c2, _mm512_fmadd_ps(_mm512_mul_ps(a, v), _mm512_mul_ps(v, v), v));  // -2u
    const __m512 e = simd::exp16(_mm512_min_ps(t, hi));
    _mm512_storeu_ps(y + i, _mm512_div_ps(v, _mm512_add_ps(one, e)));
  }
  gelu_portable(x + i, y + i, n - i);
}
#endif

Kernel kernel(KernelSet set) {
#ifdef MS_HAVE_X86
  if (set == KernelSet::kAvx512) return gelu_avx512;
  if (set == KernelSet::kAvx2) return gelu_avx2;
#endif
  (void)set;
  return gelu_portable;
}

}  // namespace

void gelu_tanh(const float* x, float* y, int64_t n, const char* set) {
  const Kernel f = kernel(kernel_set(set));
  ms::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) { f(x + begin, y + begin, end - begin); });
}

const char* gelu_kernels(const char* set) { return kernel_set_name(kernel_set(set)); }

}  // namespace ms
