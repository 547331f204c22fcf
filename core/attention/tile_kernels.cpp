// Tile kernels of the fused attention: AVX2/FMA versions compiled with a target attribute (the
// build itself targets plain x86-64) and chosen once at run time from the CPU's features, and
// portable versions in plain loops.
#include "core/attention/tile_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/base/kernel_set.h"
#include "core/base/simd_math.h"

namespace ms {
namespace {

// ---- portable ----

void gemm_portable(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t b_next, float* c,
                   int64_t ldc, int64_t m, int64_t k, int64_t n, bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (!accumulate) std::fill(ci, ci + n, 0.0f);
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
      const float* panel = b + j0 / 16 * b_next;
      for (int64_t p = 0; p < k; ++p) {
        const float aip = a[i * lda + p];
        const float* bp = panel + p * ldb;
        for (int64_t j = 0; j < 16; ++j) ci[j0 + j] += aip * bp[j];
      }
    }
  }
}

float max_portable(const float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

float exp_sum_portable(float* x, int64_t n, float shift) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    s += x[i];
  }
  return s;
}

float exp_sum_dot_portable(float* x, int64_t n, float shift, float* dot) {
  float s = 0, sd = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - shift;
    x[i] = std::exp(d);
    s += x[i];
    sd += x[i] * d;
  }
  *dot = sd;
  return s;
}

void scale_portable(float* y, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

void softcap_portable(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

void dots_portable(const float* q, int64_t rows, int64_t dh, const float* k, int64_t k_stride, int64_t nk, float* s,
                   int64_t lds) {
  for (int64_t j = 0; j < nk; ++j) {
    const float* kr = k + j * k_stride;
    for (int64_t r = 0; r < rows; ++r) {
      const float* qr = q + r * dh;
      float a = 0;
      for (int64_t d = 0; d < dh; ++d) a += qr[d] * kr[d];
      s[r * lds + j] = a;
    }
  }
}

// Keys per block of the decode products: 64 rows of V (16 KiB at d_head 64) stay in L1.
constexpr int64_t kDecodeKeys = 64;

void axpys_portable(const float* p, int64_t lds, int64_t rows, int64_t nk, const float* v, int64_t v_stride,
                    int64_t dh, float* acc) {
  for (int64_t j0 = 0; j0 < nk; j0 += kDecodeKeys) {
    const int64_t j1 = std::min(nk, j0 + kDecodeKeys);
    for (int64_t r = 0; r < rows; ++r) {
      float* ar = acc + r * dh;
      for (int64_t j = j0; j < j1; ++j) {
        const float w = p[r * lds + j];
        if (w == 0.0f) continue;
        const float* vr = v + j * v_stride;
        for (int64_t d = 0; d < dh; ++d) ar[d] += w * vr[d];
      }
    }
  }
}

void stream_copy_portable(float* dst, const float* src, int64_t n) { std::copy(src, src + n, dst); }

#ifdef MS_HAVE_X86
using simd::exp8;
using simd::hsum8;

MS_AVX2 inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// MR rows x 16 columns of C, kept in 2 * MR registers over the whole k loop.
template <int MR>
MS_AVX2 inline void gemm_block(const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                               int64_t ldc, int64_t k, bool accumulate) {
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) {
    acc[r][0] = accumulate ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();
    acc[r][1] = accumulate ? _mm256_loadu_ps(c + r * ldc + 8) : _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * ldb), b1 = _mm256_loadu_ps(b + p * ldb + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r * lda + p);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    _mm256_storeu_ps(c + r * ldc, acc[r][0]);
    _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
  }
}

MS_AVX2 void gemm_avx2(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t b_next, float* c,
                       int64_t ldc, int64_t m, int64_t k, int64_t n, bool accumulate) {
  constexpr int64_t kMR = 6;
  for (int64_t j = 0; j < n; j += 16) {
    const float* bj = b + j / 16 * b_next;
    int64_t i = 0;
    for (; i + kMR <= m; i += kMR) gemm_block<6>(a + i * lda, lda, bj, ldb, c + i * ldc + j, ldc, k, accumulate);
    const float* ai = a + i * lda;
    float* ci = c + i * ldc + j;
    switch (m - i) {
      case 5: gemm_block<5>(ai, lda, bj, ldb, ci, ldc, k, accumulate); break;
      case 4: gemm_block<4>(ai, lda, bj, ldb, ci, ldc, k, accumulate); break;
      case 3: gemm_block<3>(ai, lda, bj, ldb, ci, ldc, k, accumulate); break;
      case 2: gemm_block<2>(ai, lda, bj, ldb, ci, ldc, k, accumulate); break;
      case 1: gemm_block<1>(ai, lda, bj, ldb, ci, ldc, k, accumulate); break;
      default: break;
    }
  }
}

MS_AVX2 float max_avx2(const float* x, int64_t n) {
  int64_t i = 0;
  float m = -std::numeric_limits<float>::infinity();
  if (n >= 8) {
    __m256 v = _mm256_loadu_ps(x);
    for (i = 8; i + 8 <= n; i += 8) v = _mm256_max_ps(v, _mm256_loadu_ps(x + i));
    m = hmax8(v);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

MS_AVX2 float exp_sum_avx2(float* x, int64_t n, float shift) {
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 s = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
    _mm256_storeu_ps(x + i, e);
    s = _mm256_add_ps(s, e);
  }
  if (i < n) {  // the tail through the same exp, so a row's weights come from one function
    alignas(32) float buf[8];
    for (int64_t j = 0; j < 8; ++j) buf[j] = i + j < n ? x[i + j] : -std::numeric_limits<float>::infinity();
    __m256 e = exp8(_mm256_sub_ps(_mm256_load_ps(buf), sh));
    _mm256_store_ps(buf, e);
    for (int64_t j = 0; i + j < n; ++j) x[i + j] = buf[j];
    s = _mm256_add_ps(s, e);
  }
  return hsum8(s);
}

MS_AVX2 float exp_sum_dot_avx2(float* x, int64_t n, float shift, float* dot) {
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 s = _mm256_setzero_ps(), sd = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), sh);
    const __m256 e = exp8(d);
    _mm256_storeu_ps(x + i, e);
    s = _mm256_add_ps(s, e);
    sd = _mm256_fmadd_ps(e, d, sd);
  }
  if (i < n) {  // the tail as exp_sum's; the padding's d is finite (-100: exp8 gives exactly 0), so e * d = 0
    alignas(32) float buf[8];
    for (int64_t j = 0; j < 8; ++j) buf[j] = i + j < n ? x[i + j] - shift : -100.0f;
    const __m256 d = _mm256_load_ps(buf), e = exp8(d);
    _mm256_store_ps(buf, e);
    for (int64_t j = 0; i + j < n; ++j) x[i + j] = buf[j];
    s = _mm256_add_ps(s, e);
    sd = _mm256_fmadd_ps(e, d, sd);
  }
  *dot = hsum8(sd);
  return hsum8(s);
}

MS_AVX2 void scale_avx2(float* y, int64_t n, float s) {
  const __m256 sv = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), sv));
  for (; i < n; ++i) y[i] *= s;
}

// cap * tanh(x / cap) with tanh(y) = 1 - 2 / (exp(2y) + 1) through exp8 (exp8 saturates at
// |2y| > 88, where tanh is +-1 in float32). Its absolute error is a few ulp of 1, i.e. a few ulp
// of cap in the capped score, as float32's own cap * tanh(x / cap) has.
MS_AVX2 void softcap_avx2(float* x, int64_t n, float cap) {
  const __m256 c = _mm256_set1_ps(cap), two_over_c = _mm256_set1_ps(2.0f / cap), one = _mm256_set1_ps(1.0f),
               two = _mm256_set1_ps(2.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_mul_ps(_mm256_loadu_ps(x + i), two_over_c));
    const __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
    _mm256_storeu_ps(x + i, _mm256_mul_ps(c, t));
  }
  for (; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

// Four rows' dot products with one key row: the four accumulators reduced together by hadd.
MS_AVX2 void dots_avx2(const float* q, int64_t rows, int64_t dh, const float* k, int64_t k_stride, int64_t nk,
                       float* s, int64_t lds) {
  const int64_t d8 = dh / 8 * 8;
  for (int64_t j = 0; j < nk; ++j) {
    const float* kr = k + j * k_stride;
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
      const float *q0 = q + r * dh, *q1 = q0 + dh, *q2 = q1 + dh, *q3 = q2 + dh;
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t d = 0; d < d8; d += 8) {
        const __m256 kv = _mm256_loadu_ps(kr + d);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + d), kv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + d), kv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q2 + d), kv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q3 + d), kv, a3);
      }
      const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
      alignas(16) float out[4];
      _mm_store_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
      for (int64_t d = d8; d < dh; ++d) {
        out[0] += q0[d] * kr[d], out[1] += q1[d] * kr[d];
        out[2] += q2[d] * kr[d], out[3] += q3[d] * kr[d];
      }
      for (int64_t i = 0; i < 4; ++i) s[(r + i) * lds + j] = out[i];
    }
    for (; r < rows; ++r) {
      const float* qr = q + r * dh;
      __m256 a = _mm256_setzero_ps();
      for (int64_t d = 0; d < d8; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d), _mm256_loadu_ps(kr + d), a);
      float t = hsum8(a);
      for (int64_t d = d8; d < dh; ++d) t += qr[d] * kr[d];
      s[r * lds + j] = t;
    }
  }
}

// C vectors (8 C columns) of one row's accumulator kept in registers over n keys.
template <int C>
MS_AVX2 inline void axpy_block(const float* p, int64_t n, const float* v, int64_t v_stride, float* acc) {
  __m256 a[C];
  for (int c = 0; c < C; ++c) a[c] = _mm256_loadu_ps(acc + 8 * c);
  for (int64_t j = 0; j < n; ++j) {
    const __m256 w = _mm256_set1_ps(p[j]);
    const float* vr = v + j * v_stride;
    for (int c = 0; c < C; ++c) a[c] = _mm256_fmadd_ps(w, _mm256_loadu_ps(vr + 8 * c), a[c]);
  }
  for (int c = 0; c < C; ++c) _mm256_storeu_ps(acc + 8 * c, a[c]);
}

MS_AVX2 void axpys_avx2(const float* p, int64_t lds, int64_t rows, int64_t nk, const float* v, int64_t v_stride,
                        int64_t dh, float* acc) {
  const int64_t d8 = dh / 8 * 8;
  if (d8 == dh) {  // the usual d_head: the accumulator in registers, at most 8 vectors at a time
    for (int64_t j0 = 0; j0 < nk; j0 += kDecodeKeys) {
      const int64_t n = std::min(nk, j0 + kDecodeKeys) - j0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c0 = 0; c0 < dh / 8; c0 += 8) {
          const float* pr = p + r * lds + j0;
          const float* vb = v + j0 * v_stride + 8 * c0;
          float* ar = acc + r * dh + 8 * c0;
          switch (std::min<int64_t>(8, dh / 8 - c0)) {
            case 8: axpy_block<8>(pr, n, vb, v_stride, ar); break;
            case 7: axpy_block<7>(pr, n, vb, v_stride, ar); break;
            case 6: axpy_block<6>(pr, n, vb, v_stride, ar); break;
            case 5: axpy_block<5>(pr, n, vb, v_stride, ar); break;
            case 4: axpy_block<4>(pr, n, vb, v_stride, ar); break;
            case 3: axpy_block<3>(pr, n, vb, v_stride, ar); break;
            case 2: axpy_block<2>(pr, n, vb, v_stride, ar); break;
            default: axpy_block<1>(pr, n, vb, v_stride, ar); break;
          }
        }
    }
    return;
  }
  for (int64_t j0 = 0; j0 < nk; j0 += kDecodeKeys) {
    const int64_t j1 = std::min(nk, j0 + kDecodeKeys);
    for (int64_t r = 0; r < rows; ++r) {
      float* ar = acc + r * dh;
      for (int64_t j = j0; j < j1; ++j) {
        const float w = p[r * lds + j];
        if (w == 0.0f) continue;
        const float* vr = v + j * v_stride;
        const __m256 wv = _mm256_set1_ps(w);
        for (int64_t d = 0; d < d8; d += 8)
          _mm256_storeu_ps(ar + d, _mm256_fmadd_ps(wv, _mm256_loadu_ps(vr + d), _mm256_loadu_ps(ar + d)));
        for (int64_t d = d8; d < dh; ++d) ar[d] += w * vr[d];
      }
    }
  }
}

MS_AVX2 void stream_copy_avx2(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
  _mm_sfence();
}

MS_AVX512 void stream_copy_avx512(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  _mm_sfence();
}

// AVX-512 tile product: MR rows x NV * 16 columns of C in MR * NV registers, B's NV panels (b_next
// floats apart) read as one vector each per step of k. Two panels (6 x 32) need one broadcast of A
// per two FMAs where one panel (12 x 16) needs one per FMA.
template <int MR, int NV>
MS_AVX512 inline void gemm_block512(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t b_next, float* c,
                                    int64_t ldc, int64_t k, bool accumulate) {
  __m512 acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    __m512 bp[NV];
    for (int v = 0; v < NV; ++v) bp[v] = _mm512_loadu_ps(b + v * b_next + p * ldb);
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r * lda + p]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bp[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

// All of C's rows against NV panels of B: blocks of MR rows, then the remainder.
template <int MR, int NV>
MS_AVX512 inline void gemm_rows512(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t b_next, float* c,
                                   int64_t ldc, int64_t m, int64_t k, bool accumulate) {
  int64_t i = 0;
  for (; i + MR <= m; i += MR) gemm_block512<MR, NV>(a + i * lda, lda, b, ldb, b_next, c + i * ldc, ldc, k, accumulate);
  const float* ai = a + i * lda;
  float* ci = c + i * ldc;
  switch (m - i) {
#define MS_GEMM_REST(R) \
  case R: \
    if constexpr (R < MR) gemm_block512<R, NV>(ai, lda, b, ldb, b_next, ci, ldc, k, accumulate); \
    break;
    MS_GEMM_REST(11) MS_GEMM_REST(10) MS_GEMM_REST(9) MS_GEMM_REST(8) MS_GEMM_REST(7) MS_GEMM_REST(6)
    MS_GEMM_REST(5) MS_GEMM_REST(4) MS_GEMM_REST(3) MS_GEMM_REST(2) MS_GEMM_REST(1)
#undef MS_GEMM_REST
    default: break;
  }
}

MS_AVX512 void gemm_avx512(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t b_next, float* c,
                           int64_t ldc, int64_t m, int64_t k, int64_t n, bool accumulate) {
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) gemm_rows512<6, 2>(a, lda, b + j / 16 * b_next, ldb, b_next, c + j, ldc, m, k, accumulate);
  if (j < n) gemm_rows512<12, 1>(a, lda, b + j / 16 * b_next, ldb, b_next, c + j, ldc, m, k, accumulate);
}

// Row max, exp-and-sum and scaling 16 wide; tails under a mask, through the same exp16 (padding
// lanes -inf for exp_sum, so they add exactly 0; d = -100 for exp_sum_dot, so e * d is 0 too).
MS_AVX512 float max_avx512(const float* x, int64_t n) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 v = ninf;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) v = _mm512_max_ps(v, _mm512_loadu_ps(x + i));
  if (i < n) v = _mm512_max_ps(v, _mm512_mask_loadu_ps(ninf, simd::tail_mask16(n - i), x + i));
  return _mm512_reduce_max_ps(v);
}

MS_AVX512 float exp_sum_avx512(float* x, int64_t n, float shift) {
  const __m512 sh = _mm512_set1_ps(shift), ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 s = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = simd::exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
    _mm512_storeu_ps(x + i, e);
    s = _mm512_add_ps(s, e);
  }
  if (i < n) {
    const __mmask16 m = simd::tail_mask16(n - i);
    const __m512 e = simd::exp16(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, m, x + i), sh));
    _mm512_mask_storeu_ps(x + i, m, e);
    s = _mm512_add_ps(s, e);
  }
  return _mm512_reduce_add_ps(s);
}

MS_AVX512 float exp_sum_dot_avx512(float* x, int64_t n, float shift, float* dot) {
  const __m512 sh = _mm512_set1_ps(shift);
  __m512 s = _mm512_setzero_ps(), sd = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), sh);
    const __m512 e = simd::exp16(d);
    _mm512_storeu_ps(x + i, e);
    s = _mm512_add_ps(s, e);
    sd = _mm512_fmadd_ps(e, d, sd);
  }
  if (i < n) {
    const __mmask16 m = simd::tail_mask16(n - i);
    const __m512 d = _mm512_mask_blend_ps(m, _mm512_set1_ps(-100.0f), _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sh));
    const __m512 e = simd::exp16(d);
    _mm512_mask_storeu_ps(x + i, m, e);
    s = _mm512_add_ps(s, e);
    sd = _mm512_fmadd_ps(e, d, sd);
  }
  *dot = _mm512_reduce_add_ps(sd);
  return _mm512_reduce_add_ps(s);
}

MS_AVX512 void scale_avx512(float* y, int64_t n, float s) {
  const __m512 sv = _mm512_set1_ps(s);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), sv));
  if (i < n) {
    const __mmask16 m = simd::tail_mask16(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), sv));
  }
}

// Decode scores, AVX-512: RB rows' queries held in registers (RB x NV vectors, NV = dh / 16) while
// each key row streams past once; the RB sums of a key reduced together (256-bit halves added,
// then one hadd tree).
template <int NV, int RB>
MS_AVX512 void dots_block512(const float* q, int64_t dh, const float* k, int64_t k_stride, int64_t nk, float* s,
                             int64_t lds) {
  __m512 qv[RB][NV];
  for (int r = 0; r < RB; ++r)
    for (int v = 0; v < NV; ++v) qv[r][v] = _mm512_loadu_ps(q + r * dh + 16 * v);
  for (int64_t j = 0; j < nk; ++j) {
    const float* kr = k + j * k_stride;
    for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(kr + 16 * k_stride + 16 * v), _MM_HINT_T0);
    __m512 a[RB];
    for (int r = 0; r < RB; ++r) a[r] = _mm512_setzero_ps();
    for (int v = 0; v < NV; ++v) {
      const __m512 kv = _mm512_loadu_ps(kr + 16 * v);
      for (int r = 0; r < RB; ++r) a[r] = _mm512_fmadd_ps(qv[r][v], kv, a[r]);
    }
    if constexpr (RB == 4) {
      __m256 h[4];
      for (int r = 0; r < 4; ++r)
        h[r] = _mm256_add_ps(_mm512_castps512_ps256(a[r]),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[r]), 1)));
      const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
      alignas(16) float out[4];
      _mm_store_ps(out, _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
      for (int r = 0; r < 4; ++r) s[r * lds + j] = out[r];
    } else {
      for (int r = 0; r < RB; ++r) s[r * lds + j] = _mm512_reduce_add_ps(a[r]);
    }
  }
}

template <int NV>
MS_AVX512 void dots_rows512(const float* q, int64_t rows, int64_t dh, const float* k, int64_t k_stride, int64_t nk,
                            float* s, int64_t lds) {
  constexpr int RB = NV <= 4 ? 4 : (NV <= 8 ? 2 : 1);  // at most 16 registers of queries
  int64_t r = 0;
  for (; r + RB <= rows; r += RB) dots_block512<NV, RB>(q + r * dh, dh, k, k_stride, nk, s + r * lds, lds);
  for (; r < rows; ++r) dots_block512<NV, 1>(q + r * dh, dh, k, k_stride, nk, s + r * lds, lds);
}

MS_AVX512 void dots_avx512(const float* q, int64_t rows, int64_t dh, const float* k, int64_t k_stride, int64_t nk,
                           float* s, int64_t lds) {
  switch (dh) {
    case 64: return dots_rows512<4>(q, rows, dh, k, k_stride, nk, s, lds);
    case 128: return dots_rows512<8>(q, rows, dh, k, k_stride, nk, s, lds);
    case 256: return dots_rows512<16>(q, rows, dh, k, k_stride, nk, s, lds);
    case 32: return dots_rows512<2>(q, rows, dh, k, k_stride, nk, s, lds);
    case 96: return dots_rows512<6>(q, rows, dh, k, k_stride, nk, s, lds);
    case 80: return dots_rows512<5>(q, rows, dh, k, k_stride, nk, s, lds);
    default: return dots_avx2(q, rows, dh, k, k_stride, nk, s, lds);
  }
}

// Decode weighted values, AVX-512: R rows' accumulators (R x C vectors) in registers over n keys,
// each V row loaded once for the R rows. R x C <= 16: at d_head 64 (C = 4) the four grouped heads
// of a KV head take one pass over V, where a pass a row (the V block from L1 for the rows after the
// first) kept fewer reads in flight: on a Zen 4 at 2 threads and KV length 16,384 the decode
// attention's time went from 0.71-0.73x to 0.60-0.61x the GEMV's (`bench_retrieval --profile`;
// its bytes are 0.55x the weights'). Each row's sum runs over the keys in order, as before.
template <int C, int R>
MS_AVX512 inline void axpy_block512(const float* p, int64_t lds, int64_t n, const float* v, int64_t v_stride,
                                    float* acc, int64_t acc_stride) {
  __m512 a[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) a[r][c] = _mm512_loadu_ps(acc + r * acc_stride + 16 * c);
  for (int64_t j = 0; j < n; ++j) {
    const float* vr = v + j * v_stride;
    __m512 vv[C];
    for (int c = 0; c < C; ++c) vv[c] = _mm512_loadu_ps(vr + 16 * c);
    for (int r = 0; r < R; ++r) {
      const __m512 w = _mm512_set1_ps(p[r * lds + j]);
      for (int c = 0; c < C; ++c) a[r][c] = _mm512_fmadd_ps(w, vv[c], a[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(acc + r * acc_stride + 16 * c, a[r][c]);
}

// Rows in groups of 4 (C <= 4), 2, then 1, for C vectors of columns.
template <int C>
MS_AVX512 void axpy_rows512(const float* p, int64_t lds, int64_t rows, int64_t n, const float* v, int64_t v_stride,
                            float* acc, int64_t dh) {
  int64_t r = 0;
  if constexpr (4 * C <= 16)
    for (; r + 4 <= rows; r += 4) axpy_block512<C, 4>(p + r * lds, lds, n, v, v_stride, acc + r * dh, dh);
  for (; r + 2 <= rows; r += 2) axpy_block512<C, 2>(p + r * lds, lds, n, v, v_stride, acc + r * dh, dh);
  for (; r < rows; ++r) axpy_block512<C, 1>(p + r * lds, lds, n, v, v_stride, acc + r * dh, dh);
}

MS_AVX512 void axpys_avx512(const float* p, int64_t lds, int64_t rows, int64_t nk, const float* v, int64_t v_stride,
                            int64_t dh, float* acc) {
  if (dh % 16 != 0 || dh > 16 * 16) return axpys_avx2(p, lds, rows, nk, v, v_stride, dh, acc);
  for (int64_t j0 = 0; j0 < nk; j0 += kDecodeKeys) {
    const int64_t n = std::min(nk, j0 + kDecodeKeys) - j0;
    for (int64_t c0 = 0; c0 < dh / 16; c0 += 8) {
      const float* pr = p + j0;
      const float* vb = v + j0 * v_stride + 16 * c0;
      float* ar = acc + 16 * c0;
      switch (std::min<int64_t>(8, dh / 16 - c0)) {
        case 8: axpy_rows512<8>(pr, lds, rows, n, vb, v_stride, ar, dh); break;
        case 7: axpy_rows512<7>(pr, lds, rows, n, vb, v_stride, ar, dh); break;
        case 6: axpy_rows512<6>(pr, lds, rows, n, vb, v_stride, ar, dh); break;
        case 5: axpy_rows512<5>(pr, lds, rows, n, vb, v_stride, ar, dh); break;
        case 4: axpy_rows512<4>(pr, lds, rows, n, vb, v_stride, ar, dh); break;
        case 3: axpy_rows512<3>(pr, lds, rows, n, vb, v_stride, ar, dh); break;
        case 2: axpy_rows512<2>(pr, lds, rows, n, vb, v_stride, ar, dh); break;
        default: axpy_rows512<1>(pr, lds, rows, n, vb, v_stride, ar, dh); break;
      }
    }
  }
}
#endif  // MS_HAVE_X86

}  // namespace

const TileKernels& tile_kernels(bool portable) {
  static const TileKernels kPortable{gemm_portable, max_portable, exp_sum_portable, exp_sum_dot_portable,
                                     scale_portable, softcap_portable, dots_portable, axpys_portable,
                                     stream_copy_portable, "portable"};
  // The CPU's widest set unless MECHSCOPE_ATTENTION_KERNELS caps it (core/base/kernel_set.h).
  const KernelSet set = portable ? KernelSet::kPortable : kernel_set();
#ifdef MS_HAVE_X86
  static const TileKernels kAvx2{gemm_avx2, max_avx2, exp_sum_avx2, exp_sum_dot_avx2, scale_avx2, softcap_avx2, dots_avx2, axpys_avx2,
                                 stream_copy_avx2, "avx2"};
  // AVX-512: everything 16 wide but soft-capping (AVX2).
  static const TileKernels kAvx512{gemm_avx512, max_avx512, exp_sum_avx512, exp_sum_dot_avx512, scale_avx512,
                                   softcap_avx2, dots_avx512, axpys_avx512, stream_copy_avx512, "avx512"};
  if (set == KernelSet::kAvx512) return kAvx512;
  if (set == KernelSet::kAvx2) return kAvx2;
#endif
  return kPortable;
}

}  // namespace ms
