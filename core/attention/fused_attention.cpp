// Fused attention on the CPU: tiling, the online softmax and the threading; the inner loops are
// the tile kernels of core/attention/tile_kernels.h.
#include "core/attention/fused_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/attention/tile_kernels.h"

namespace ms {
namespace {

std::atomic<int64_t> g_calls{0};

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

// Sizes of one call and raw views of its float32 tensors (d_head contiguous).
struct Problem {
  int64_t B, T, H, KV, G, dh, dhp, P, W;
  int64_t tq, tk, n_qt;
  float scale;
  const float *q, *k, *v;
  int64_t q_b, q_t, q_h, k_b, k_h, k_s, v_b, v_h, v_s;
  float* z;  // (B, T, H, dh) contiguous
};

// One worker's tiles: queries of G heads (rows g * nq + i), K^T, V, scores, the accumulator.
struct Scratch {
  std::vector<float> q, kt, v, s, acc, m, l;
  explicit Scratch(const Problem& p) {
    const int64_t rows = p.G * p.tq, tkp = round16(p.tk);
    q.resize(rows * p.dh);
    kt.resize(p.dh * tkp);
    v.assign(tkp * p.dhp, 0.0f);
    s.resize(rows * tkp);
    acc.resize(rows * p.dhp);
    m.resize(rows);
    l.resize(rows);
  }
};

// Loads keys [k0, k0 + nk) of one KV head: K transposed to (dh, nkp) and V to (nk, dhp).
void load_kv(const Problem& p, int64_t b, int64_t kvh, int64_t k0, int64_t nk, int64_t nkp, Scratch& s) {
  const float* kb = p.k + b * p.k_b + kvh * p.k_h + k0 * p.k_s;
  const float* vb = p.v + b * p.v_b + kvh * p.v_h + k0 * p.v_s;
  for (int64_t j = 0; j < nk; ++j) {
    const float* kr = kb + j * p.k_s;
    for (int64_t d = 0; d < p.dh; ++d) s.kt[d * nkp + j] = kr[d];
    std::copy(vb + j * p.v_s, vb + j * p.v_s + p.dh, s.v.data() + j * p.dhp);
  }
  for (int64_t d = 0; d < p.dh; ++d) std::fill(s.kt.data() + d * nkp + nk, s.kt.data() + (d + 1) * nkp, 0.0f);
}

// The online-softmax step of one row over its visible keys [jlo, jhi) of the tile's scores:
// the row becomes its unnormalised weights (0 outside), the running max and sum advance and the
// accumulator is rescaled to the new max.
void softmax_step(const TileKernels& kn, float* row, int64_t nk, int64_t jlo, int64_t jhi, float& m, float& l,
                  float* acc, int64_t dhp) {
  if (jhi <= jlo) {
    std::fill(row, row + nk, 0.0f);
    return;
  }
  const float m_new = std::max(m, kn.max(row + jlo, jhi - jlo));
  const float corr = std::exp(m - m_new);  // 0 on the row's first visible tile (m = -inf)
  const float sum = kn.exp_sum(row + jlo, jhi - jlo, m_new);
  std::fill(row, row + jlo, 0.0f);
  std::fill(row + jhi, row + nk, 0.0f);
  if (corr != 1.0f) kn.scale(acc, dhp, corr);
  l = l * corr + sum;
  m = m_new;
}

// Attention of query tile qt of KV head kvh in batch row b, for its G heads at once.
void run_tile(const Problem& p, const TileKernels& kn, int64_t b, int64_t kvh, int64_t qt, Scratch& s) {
  const int64_t t0 = qt * p.tq, nq = std::min(p.tq, p.T - t0), rows = p.G * nq;
  const int64_t qa0 = p.P + t0, qa1 = qa0 + nq - 1;  // absolute positions of the first, last query
  for (int64_t g = 0; g < p.G; ++g)
    for (int64_t i = 0; i < nq; ++i) {
      const float* src = p.q + b * p.q_b + (t0 + i) * p.q_t + (kvh * p.G + g) * p.q_h;
      float* dst = s.q.data() + (g * nq + i) * p.dh;
      for (int64_t d = 0; d < p.dh; ++d) dst[d] = src[d] * p.scale;
    }
  std::fill(s.m.begin(), s.m.begin() + rows, kNegInf);
  std::fill(s.l.begin(), s.l.begin() + rows, 0.0f);
  std::fill(s.acc.begin(), s.acc.begin() + rows * p.dhp, 0.0f);
  const int64_t k_lo = p.W > 0 ? std::max<int64_t>(0, qa0 - p.W + 1) : 0, k_hi = qa1 + 1;
  for (int64_t k0 = k_lo; k0 < k_hi; k0 += p.tk) {
    const int64_t nk = std::min(p.tk, k_hi - k0), nkp = round16(nk);
    load_kv(p, b, kvh, k0, nk, nkp, s);
    kn.gemm(s.q.data(), p.dh, s.kt.data(), nkp, s.s.data(), nkp, rows, p.dh, nkp, false);
    for (int64_t r = 0; r < rows; ++r) {
      // Row r's visible keys in this tile form one interval: causal, and the window behind it.
      const int64_t qa = qa0 + r % nq;
      const int64_t jhi = std::min(nk, qa - k0 + 1);
      const int64_t jlo = p.W > 0 ? std::max<int64_t>(0, qa - p.W + 1 - k0) : 0;
      softmax_step(kn, s.s.data() + r * nkp, nk, jlo, jhi, s.m[r], s.l[r], s.acc.data() + r * p.dhp, p.dhp);
    }
    kn.gemm(s.s.data(), nkp, s.v.data(), p.dhp, s.acc.data(), p.dhp, rows, nk, p.dhp, true);
  }
  for (int64_t g = 0; g < p.G; ++g)
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t r = g * nq + i;
      const float inv = 1.0f / s.l[r];
      const float* a = s.acc.data() + r * p.dhp;
      float* dst = p.z + ((b * p.T + t0 + i) * p.H + kvh * p.G + g) * p.dh;
      for (int64_t d = 0; d < p.dh; ++d) dst[d] = a[d] * inv;
    }
}

at::Tensor as_float_rows(const at::Tensor& t) {
  at::Tensor f = t.scalar_type() == at::kFloat ? t : t.to(at::kFloat);
  return f.stride(-1) == 1 ? f : f.contiguous();
}

}  // namespace

at::Tensor fused_attention(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
                           const FusedAttentionOptions& o) {
  if (q_in.dim() != 4 || k_in.dim() != 4 || v_in.dim() != 4 || !q_in.device().is_cpu())
    throw std::invalid_argument("fused_attention: q, k, v must be 4-d CPU tensors");
  at::Tensor q = as_float_rows(q_in), k = as_float_rows(k_in), v = as_float_rows(v_in);
  Problem p{};
  p.B = q.size(0), p.T = q.size(1), p.H = q.size(2), p.dh = q.size(3);
  p.KV = k.size(1), p.P = o.past, p.W = o.sliding_window;
  if (p.KV <= 0 || p.H % p.KV != 0 || k.size(0) != p.B || k.size(2) != p.P + p.T || k.size(3) != p.dh ||
      !v.sizes().equals(k.sizes()))
    throw std::invalid_argument("fused_attention: k and v must be (batch, kv_heads, past + T, d_head) for q " +
                                std::to_string(p.B) + "x" + std::to_string(p.T) + "x" + std::to_string(p.H) +
                                "x" + std::to_string(p.dh));
  p.G = p.H / p.KV;
  p.dhp = round16(p.dh);
  p.scale = static_cast<float>(o.scale);
  // About 64 rows (queries x grouped heads) against 128 keys: the tiles of one worker stay in L2.
  p.tq = std::min(p.T, o.q_tile > 0 ? o.q_tile : std::max<int64_t>(8, 64 / p.G));
  p.tk = round16(o.k_tile > 0 ? o.k_tile : 128);
  p.n_qt = (p.T + p.tq - 1) / p.tq;
  p.q = q.data_ptr<float>(), p.k = k.data_ptr<float>(), p.v = v.data_ptr<float>();
  p.q_b = q.stride(0), p.q_t = q.stride(1), p.q_h = q.stride(2);
  p.k_b = k.stride(0), p.k_h = k.stride(1), p.k_s = k.stride(2);
  p.v_b = v.stride(0), p.v_h = v.stride(1), p.v_s = v.stride(2);
  at::Tensor z = at::empty({p.B, p.T, p.H, p.dh}, q.options());
  p.z = z.data_ptr<float>();
  const TileKernels& kn = tile_kernels(o.portable);
  g_calls.fetch_add(1, std::memory_order_relaxed);
  // Items ordered so that each worker's contiguous share mixes early (short) and late (long)
  // causal query tiles: tile order 0, n-1, 1, n-2, ...
  const int64_t n_items = p.B * p.KV * p.n_qt;
  at::parallel_for(0, n_items, 1, [&](int64_t begin, int64_t end) {
    Scratch s(p);
    for (int64_t it = begin; it < end; ++it) {
      const int64_t pos = it % p.n_qt, bh = it / p.n_qt;
      const int64_t qt = pos % 2 == 0 ? pos / 2 : p.n_qt - 1 - pos / 2;
      run_tile(p, kn, bh / p.KV, bh % p.KV, qt, s);
    }
  });
  return q_in.scalar_type() == at::kFloat ? z : z.to(q_in.scalar_type());
}

int64_t fused_attention_calls() { return g_calls.load(std::memory_order_relaxed); }

const char* fused_attention_kernels(bool portable) { return tile_kernels(portable).name; }

}  // namespace ms
