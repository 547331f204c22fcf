// Fused attention on the CPU: tiling, the online softmax and the threading; the inner loops are
// the tile kernels of core/attention/tile_kernels.h.
#include "core/attention/fused_attention.h"
#include "core/base/parallel.h"
#include "core/attention/visibility.h"

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
  int64_t tq, tk, n_qt, n_kt;  // n_kt: the most key tiles one query tile walks
  float scale, cap;  // cap > 0: soft-capping of the scaled scores
  const float *q, *k, *v;
  int64_t q_b, q_t, q_h, k_b, k_h, k_s, v_b, v_h, v_s;
  // The tiled path's K and V, packed once per call (pack_kv): K^T in blocks of 16 keys, kp[(b, kv
  // head, key / 16)] a contiguous (dh, 16), and V as (b, kv head, key, dhp); nb blocks a head,
  // zeros past the last key and in V's padding columns.
  const float *kp, *vp;
  int64_t nb;
  float* z;  // (B, T, H, dh) contiguous
  const FusedAttentionStats* stats;  // or null
  bool row_stats;                    // entropy, argmax or max weight wanted
  bool decode;                       // one query per head through run_decode
};

// One row's statistics as its key tiles come: u = sum over the keys so far of p~ (s - m), with
// p~ = exp(s - m) under the running max m (the entropy is log l - u / l once m and l are final),
// and the best score with its first key (absolute).
struct RowStats {
  float u, best;
  int64_t best_k;
};

// One worker's tiles: queries of G heads (rows g * nq + i), scores of one key tile, the accumulator.
// With key mass wanted, kept receives every key tile's weights of the query tile ([key tile][rows]
// [nkp], slot floats apart; streamed out of the cache, as they are read back only once the walk
// ends) and mt each row's running max at each key tile ([key tile][rows]).
struct Scratch {
  std::vector<float> q, s, acc, m, l, mt;
  at::Tensor kept;  // 64-byte aligned (ATen's allocator), for the streaming stores; undefined: no key mass
  std::vector<float> c, mass;   // key mass: each row's scale exp(m_tile - m) / l; one head's sums over a tile
  std::vector<RowStats> row;
  std::vector<float> key_mass;  // this worker's share of stats->key_mass, (B, H, P + T)
  int64_t slot = 0;             // floats from one key tile's weights to the next's; 0: one tile
  std::vector<float> dq, ds, dacc, e;  // decode: the G scaled queries, their scores over every key, z; a row's scores
  explicit Scratch(const Problem& p) {
    const int64_t rows = p.G * p.tq, tkp = round16(p.tk);
    const bool keep = p.stats && p.stats->key_mass && !p.decode;  // the decode path keeps its own scores
    slot = keep ? rows * tkp : 0;
    q.resize(rows * p.dh);
    s.resize(rows * tkp);
    acc.resize(rows * p.dhp);
    m.resize(rows);
    l.resize(rows);
    if (p.row_stats) row.resize(rows);
    if (p.stats && p.stats->key_mass) key_mass.assign(p.B * p.H * (p.P + p.T), 0.0f);
    if (!keep) return;
    kept = at::empty({slot * p.n_kt}, at::kFloat);
    mt.resize(rows * p.n_kt);
    c.resize(rows);
    mass.resize(tkp);
  }
};

// Packs K and V of every (batch row, KV head) once for the call's query tiles: K transposed into
// blocks of 16 keys (each key tile of the walk is then contiguous (dh, 16) strips) and V into
// contiguous (key, dhp) rows, read in place by every query tile instead of each tile's own copy
// (at 32K tokens and the forward's strided K and V views that copying was a quarter of the kernel).
void pack_kv(Problem& p, at::Tensor& kp, at::Tensor& vp) {
  const int64_t S = p.P + p.T;
  p.nb = (S + 15) / 16;
  kp = at::empty({p.B * p.KV * p.nb * p.dh * 16}, at::kFloat);
  vp = at::empty({p.B * p.KV * p.nb * 16 * p.dhp}, at::kFloat);
  float* kd = kp.data_ptr<float>();
  float* vd = vp.data_ptr<float>();
  const Problem& c = p;
  ms::parallel_for(0, p.B * p.KV * p.nb, 16, [&](int64_t begin, int64_t end) {
    for (int64_t it = begin; it < end; ++it) {
      const int64_t blk = it % c.nb, bh = it / c.nb, b = bh / c.KV, kvh = bh % c.KV, k0 = blk * 16;
      const int64_t n = std::min<int64_t>(16, S - k0);
      const float* kb = c.k + b * c.k_b + kvh * c.k_h + k0 * c.k_s;
      const float* vb = c.v + b * c.v_b + kvh * c.v_h + k0 * c.v_s;
      float* kt = kd + it * c.dh * 16;
      float* vt = vd + it * 16 * c.dhp;
      for (int64_t j = 0; j < n; ++j) {
        const float* kr = kb + j * c.k_s;
        for (int64_t d = 0; d < c.dh; ++d) kt[d * 16 + j] = kr[d];
        std::copy(vb + j * c.v_s, vb + j * c.v_s + c.dh, vt + j * c.dhp);
        std::fill(vt + j * c.dhp + c.dh, vt + (j + 1) * c.dhp, 0.0f);
      }
      for (int64_t d = 0; d < c.dh && n < 16; ++d) std::fill(kt + d * 16 + n, kt + d * 16 + 16, 0.0f);
      std::fill(vt + n * c.dhp, vt + 16 * c.dhp, 0.0f);
    }
  });
  p.kp = kd, p.vp = vd;
}

// Query qa's visible keys in a key tile starting at k0 form one interval [jlo, jhi) of the tile:
// causal, and the window behind it (empty when jhi <= jlo).
void visible_interval(const Problem& p, int64_t qa, int64_t k0, int64_t nk, int64_t& jlo, int64_t& jhi) {
  jhi = std::min(nk, qa - k0 + 1);
  jlo = std::max<int64_t>(0, first_visible_key(qa, p.W) - k0);
}

// The online-softmax step of one row over its visible keys [jlo, jhi) of the tile's scores (the
// tile's first key is k0): the row becomes its unnormalised weights (0 outside), the running max
// and sum advance and the accumulator is rescaled to the new max. With st, the row's statistics
// advance from the same scores and exponentials: the best score (the first maximum, as at::max
// gives it: only a strictly greater score replaces it), and u rescaled to the new max m' =
// max(m, tile max): each earlier p~ scales by corr = exp(m - m') and each earlier s - m drops by
// m' - m, so u' = corr * (u + l * (m - m')), plus this tile's sum of p~ (s - m').
void softmax_step(const TileKernels& kn, float* row, int64_t nk, int64_t jlo, int64_t jhi, int64_t k0, float& m,
                  float& l, float* acc, int64_t dhp, RowStats* st) {
  if (jhi <= jlo) {
    std::fill(row, row + nk, 0.0f);
    return;
  }
  const float tile_max = kn.max(row + jlo, jhi - jlo);
  const float m_new = std::max(m, tile_max);
  const float corr = std::exp(m - m_new);  // 0 on the row's first visible tile (m = -inf)
  float sum;
  if (st) {
    if (tile_max > st->best) st->best = tile_max, st->best_k = k0 + (std::find(row + jlo, row + jhi, tile_max) - row);
    float dot;
    sum = kn.exp_sum_dot(row + jlo, jhi - jlo, m_new, &dot);
    st->u = (l > 0 ? corr * (st->u + l * (m - m_new)) : 0.0f) + dot;  // l = 0: the first visible tile
  } else {
    sum = kn.exp_sum(row + jlo, jhi - jlo, m_new);
  }
  std::fill(row, row + jlo, 0.0f);
  std::fill(row + jhi, row + nk, 0.0f);
  if (corr != 1.0f) kn.scale(acc, dhp, corr);
  l = l * corr + sum;
  m = m_new;
}

// The statistics of a query tile's rows once their max m and sum l are final. Row statistics:
// entropy log l - u / l, argmax, max weight exp(best - m) / l. Key mass from the kept weights
// p~ of every key tile j, taken under the row's max m_j at that tile: A = p~ exp(m_j - m) / l.
void write_stats(const Problem& p, const TileKernels& kn, int64_t b, int64_t kvh, int64_t t0, int64_t nq,
                 int64_t k_lo, int64_t k_hi, Scratch& s) {
  const FusedAttentionStats& st = *p.stats;
  const int64_t rows = p.G * nq, qa0 = p.P + t0, n_keys = p.P + p.T;
  for (int64_t r = 0; r < rows && p.row_stats; ++r) {
    const int64_t at = (b * p.H + kvh * p.G + r / nq) * st.query_positions + qa0 + r % nq - st.query_offset;
    const RowStats& rs = s.row[r];
    if (st.entropy) st.entropy[at] = static_cast<float>(std::log(double(s.l[r])) - double(rs.u) / s.l[r]);
    if (st.argmax) st.argmax[at] = rs.best_k;
    if (st.max_weight) st.max_weight[at] = std::exp(rs.best - s.m[r]) / s.l[r];
  }
  if (!s.kept.defined()) return;
  // Per key tile and head: the mass row (1, nkp) = c (1, nq) x weights (nq, nkp), the weights'
  // rows summed with the factors c into an accumulator held in registers (the decode step's
  // axpys: a GEMM with one row was bound by one FMA chain's latency); masked weights are exactly
  // 0, so the rows' whole tiles go in.
  const int64_t row_cap = p.G * p.tq;
  for (int64_t j = 0, k0 = k_lo; k0 < k_hi; ++j, k0 += p.tk) {
    const int64_t nk = std::min(p.tk, k_hi - k0), nkp = round16(nk);
    const float* w = s.kept.data_ptr<float>() + j * s.slot;  // (rows, nkp)
    const float* mj = s.mt.data() + j * row_cap;
    for (int64_t r = 0; r < rows; ++r) s.c[r] = std::exp(mj[r] - s.m[r]) / s.l[r];  // 0 where m_j = -inf
    for (int64_t g = 0; g < p.G; ++g) {
      std::fill(s.mass.begin(), s.mass.begin() + nkp, 0.0f);
      kn.axpys(s.c.data() + g * nq, nq, 1, nq, w + g * nq * nkp, nkp, nkp, s.mass.data());
      float* km = s.key_mass.data() + (b * p.H + kvh * p.G + g) * n_keys + k0;
      for (int64_t i = 0; i < nk; ++i) km[i] += s.mass[i];
    }
  }
}

// Attention of query tile qt of KV head kvh in batch row b, for its G heads at once, in one walk
// over the key tiles that also gathers the statistics.
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
  std::fill(s.row.begin(), s.row.begin() + (s.row.empty() ? 0 : rows), RowStats{0.0f, kNegInf, -1});
  // Key tiles start on the packing's 16-key blocks (a window's first keys masked in the tile).
  const int64_t k_lo = first_visible_key(qa0, p.W) / 16 * 16, k_hi = qa1 + 1, row_cap = p.G * p.tq;
  const int64_t bh = b * p.KV + kvh;
  const float* kp = p.kp + bh * p.nb * p.dh * 16;
  const float* vp = p.vp + bh * p.nb * 16 * p.dhp;
  for (int64_t j = 0, k0 = k_lo; k0 < k_hi; ++j, k0 += p.tk) {
    const int64_t nk = std::min(p.tk, k_hi - k0), nkp = round16(nk);
    float* w = s.s.data();  // (rows, nkp): this key tile's scores, then its weights
    // K^T's 16-key blocks are the product's 16-column panels, dh * 16 floats apart.
    kn.gemm(s.q.data(), p.dh, kp + k0 / 16 * p.dh * 16, 16, p.dh * 16, w, nkp, rows, p.dh, nkp, false);
    if (p.cap > 0)
      for (int64_t r = 0; r < rows; ++r) kn.softcap(w + r * nkp, nk, p.cap);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t jlo, jhi;
      visible_interval(p, qa0 + r % nq, k0, nk, jlo, jhi);
      softmax_step(kn, w + r * nkp, nk, jlo, jhi, k0, s.m[r], s.l[r], s.acc.data() + r * p.dhp, p.dhp,
                   s.row.empty() ? nullptr : &s.row[r]);
    }
    if (!s.mt.empty()) std::copy(s.m.begin(), s.m.begin() + rows, s.mt.begin() + j * row_cap);
    kn.gemm(w, nkp, vp + k0 * p.dhp, p.dhp, 16, s.acc.data(), p.dhp, rows, nk, p.dhp, true);
    if (s.kept.defined()) kn.stream_copy(s.kept.data_ptr<float>() + j * s.slot, w, rows * nkp);
  }
  for (int64_t g = 0; g < p.G; ++g)
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t r = g * nq + i;
      const float inv = 1.0f / s.l[r];
      const float* a = s.acc.data() + r * p.dhp;
      float* dst = p.z + ((b * p.T + t0 + i) * p.H + kvh * p.G + g) * p.dh;
      for (int64_t d = 0; d < p.dh; ++d) dst[d] = a[d] * inv;
    }
  if (p.stats) write_stats(p, kn, b, kvh, t0, nq, k_lo, k_hi, s);
}

// A decode step (T = 1) of KV head kvh in batch row b: the G queries' scores over every visible
// key are few (G x keys), so they are kept whole and the softmax is exact (max, then exp and sum)
// with no tiles; K and V are read in place, once, row by row (the step is bound by reading the
// cache, and the tiled path's transposed copy of K doubled that). Statistics from the same scores.
void run_decode(const Problem& p, const TileKernels& kn, int64_t b, int64_t kvh, Scratch& s) {
  const int64_t qa = p.P, k_lo = first_visible_key(qa, p.W), nk = qa + 1 - k_lo, rows = p.G;
  s.dq.resize(static_cast<size_t>(rows * p.dh));
  s.ds.resize(static_cast<size_t>(rows * nk));
  s.dacc.assign(static_cast<size_t>(rows * p.dh), 0.0f);
  for (int64_t g = 0; g < rows; ++g) {
    const float* src = p.q + b * p.q_b + (kvh * p.G + g) * p.q_h;
    for (int64_t d = 0; d < p.dh; ++d) s.dq[static_cast<size_t>(g * p.dh + d)] = src[d] * p.scale;
  }
  const float* kb = p.k + b * p.k_b + kvh * p.k_h + k_lo * p.k_s;
  const float* vb = p.v + b * p.v_b + kvh * p.v_h + k_lo * p.v_s;
  kn.dots(s.dq.data(), rows, p.dh, kb, p.k_s, nk, s.ds.data(), nk);
  if (p.cap > 0) kn.softcap(s.ds.data(), rows * nk, p.cap);
  const FusedAttentionStats* st = p.stats;
  const int64_t n_keys = p.P + p.T;
  for (int64_t g = 0; g < rows; ++g) {
    float* row = s.ds.data() + g * nk;
    const float m = kn.max(row, nk);
    int64_t best = 0;
    while (best + 1 < nk && row[best] != m) ++best;  // the first maximum, as at::max gives it
    float ent = 0;
    if (st && st->entropy) {  // -sum a log a with log a = s - m - log l, from the scores before exp
      s.e.resize(static_cast<size_t>(nk));
      std::copy(row, row + nk, s.e.data());
    }
    const float l = kn.exp_sum(row, nk, m), inv_l = 1.0f / l;
    if (!st) {
      kn.scale(row, nk, inv_l);
      continue;
    }
    const int64_t h = kvh * p.G + g, at = (b * p.H + h) * st->query_positions + qa - st->query_offset;
    if (st->entropy) {
      const float log_l = std::log(l);
      for (int64_t j = 0; j < nk; ++j) ent += row[j] * inv_l * (log_l - (s.e[static_cast<size_t>(j)] - m));
      st->entropy[at] = ent;
    }
    if (st->argmax) st->argmax[at] = k_lo + best;
    if (st->max_weight) st->max_weight[at] = inv_l;  // exp(m - m) / l
    kn.scale(row, nk, inv_l);
    if (!s.key_mass.empty()) {
      float* km = s.key_mass.data() + (b * p.H + h) * n_keys + k_lo;
      for (int64_t j = 0; j < nk; ++j) km[j] += row[j];
    }
  }
  kn.axpys(s.ds.data(), nk, rows, nk, vb, p.v_s, p.dh, s.dacc.data());
  for (int64_t g = 0; g < rows; ++g)
    std::copy(s.dacc.data() + g * p.dh, s.dacc.data() + (g + 1) * p.dh, p.z + (b * p.H + kvh * p.G + g) * p.dh);
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
  p.cap = static_cast<float>(o.softcap);
  // About 72 rows (queries x grouped heads) against 128 keys: the tiles of one worker stay in L2,
  // and 72 rows are whole blocks of the tile products' 12 (AVX-512) and 6 (AVX2) rows when the
  // grouped heads divide 72 (1, 2, 3, 4, 6, 8 and 9 do), with no short remainder block.
  p.tq = std::min(p.T, o.q_tile > 0 ? o.q_tile : std::max<int64_t>(4, 72 / p.G));
  p.tk = round16(o.k_tile > 0 ? o.k_tile : 128);
  p.n_qt = (p.T + p.tq - 1) / p.tq;
  // A query tile's keys span at most past + T, and with a window at most window + q_tile - 1
  // (and up to 15 more: key tiles start on 16-key blocks).
  const int64_t span = p.W > 0 ? std::min(p.P + p.T, p.W + p.tq - 1 + 15) : p.P + p.T;
  p.n_kt = (span + p.tk - 1) / p.tk;
  p.q = q.data_ptr<float>(), p.k = k.data_ptr<float>(), p.v = v.data_ptr<float>();
  p.q_b = q.stride(0), p.q_t = q.stride(1), p.q_h = q.stride(2);
  p.k_b = k.stride(0), p.k_h = k.stride(1), p.k_s = k.stride(2);
  p.v_b = v.stride(0), p.v_h = v.stride(1), p.v_s = v.stride(2);
  at::Tensor z = at::empty({p.B, p.T, p.H, p.dh}, q.options());
  p.z = z.data_ptr<float>();
  p.stats = o.stats && o.stats->any() ? o.stats : nullptr;
  p.row_stats = p.stats && (p.stats->entropy || p.stats->argmax || p.stats->max_weight);
  p.decode = p.T == 1 && !o.tiled_decode;
  if (p.stats && (p.stats->batch != p.B || p.stats->n_heads != p.H || (p.stats->key_mass && p.stats->key_positions < p.P + p.T) ||
                  ((p.stats->entropy || p.stats->argmax || p.stats->max_weight) &&
                   (p.stats->query_offset < 0 || p.stats->query_offset > p.P ||
                    p.stats->query_positions < p.P + p.T - p.stats->query_offset))))
    throw std::invalid_argument("fused_attention: statistics buffers are not (batch " + std::to_string(p.B) +
                                ", heads " + std::to_string(p.H) + ", >= past + T = " + std::to_string(p.P + p.T) +
                                " less the query offset, at most past)");
  at::Tensor k_packed, v_packed;
  if (!p.decode) pack_kv(p, k_packed, v_packed);
  const TileKernels& kn = tile_kernels(o.portable);
  g_calls.fetch_add(1, std::memory_order_relaxed);
  // Items dealt round-robin to the workers, (batch row, KV head) by (batch row, KV head) and each
  // head's query tiles longest first, so that the workers walk the same K and V at the same time
  // (at 32K tokens one head's K and V are 16 MiB: two heads at once would not share the L3) and
  // end together (each pair of neighbouring tiles swapped on odd heads, so that one worker does
  // not take the longer of every pair). Static, and the workers' key-mass shares added in a fixed
  // order: the same result every run.
  const int64_t n_items = p.B * p.KV * p.n_qt;
  const int64_t n_workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n_items));
  std::vector<std::vector<float>> shares(static_cast<size_t>(n_workers));  // each worker's key mass
  auto work = [&](int64_t worker) {
    Scratch s(p);
    for (int64_t it = worker; it < n_items; it += n_workers) {
      const int64_t bh = it / p.n_qt;
      int64_t pos = it % p.n_qt;
      if (bh % 2 == 1 && (pos ^ 1) < p.n_qt) pos ^= 1;
      const int64_t qt = p.n_qt - 1 - pos;
      if (p.decode) run_decode(p, kn, bh / p.KV, bh % p.KV, s);
      else run_tile(p, kn, bh / p.KV, bh % p.KV, qt, s);
    }
    shares[static_cast<size_t>(worker)] = std::move(s.key_mass);
  };
  ms::parallel_for(0, n_workers, 1, [&](int64_t begin, int64_t end) {
    for (int64_t worker = begin; worker < end; ++worker) work(worker);
  });
  // Workers share keys: their key-mass shares added in worker order.
  const int64_t n_keys = p.P + p.T;
  for (const std::vector<float>& share : shares) {
    if (share.empty()) continue;
    for (int64_t bh = 0; bh < p.B * p.H; ++bh) {
      const float* src = share.data() + bh * n_keys;
      float* dst = p.stats->key_mass + bh * p.stats->key_positions;
      for (int64_t k = 0; k < n_keys; ++k) dst[k] += src[k];
    }
  }
  return q_in.scalar_type() == at::kFloat ? z : z.to(q_in.scalar_type());
}

int64_t fused_attention_calls() { return g_calls.load(std::memory_order_relaxed); }

const char* fused_attention_kernels(bool portable) { return tile_kernels(portable).name; }

}  // namespace ms
