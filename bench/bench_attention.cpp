// Attention-kernel benchmark: the fused CPU attention kernel alone (core/attention/fused_attention.h)
// on the long-context model's shape (16 query heads, 4 KV heads, d_head 64) at one length, against
// its FLOP floor (the two causal products at the GEMM peak measured in the same run), with and
// without the statistics the sink analysis asks for, at 1 thread and at the machine's thread
// count, variants interleaved (medians). It isolates the part of the forward that bench_forward's
// "attention beyond the GEMM floor" figure reports.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.h"
#include "core/base/malloc_reuse.h"
#include "core/attention/fused_attention.h"
#include "core/attention/tile_kernels.h"

int main(int argc, char** argv) {
  ms::keep_freed_memory_for_reuse();  // as mechscope does (core/base/malloc_reuse.h)
  ms::huge_pages_for_large_tensors();  // large tensors on transparent huge pages (core/base/malloc_reuse.h)
  int64_t T = 4096, reps = 5;
  std::string threads_list, decode_list = "4096,16384";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seq" && i + 1 < argc) T = std::atoll(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads_list = argv[++i];
    else if (a == "--decode" && i + 1 < argc) decode_list = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_attention [--seq T] [--reps N] [--threads 1,2] [--decode KV1,KV2 (\"\": skip)]\n");
      return 2;
    }
  }
  std::vector<int64_t> threads = threads_list.empty()
                                     ? std::vector<int64_t>{1, std::max<int64_t>(1, std::thread::hardware_concurrency())}
                                     : ms::bench::parse_list(threads_list);
  const int64_t H = 16, KV = 4, dh = 64;
  at::manual_seed(1);
  at::Tensor q = at::randn({1, T, H, dh}), k = at::randn({1, KV, T, dh}), v = at::randn({1, KV, T, dh});
  const double flops = 2.0 * 2.0 * H * dh * (static_cast<double>(T) * (T + 1) / 2);
  std::vector<float> key_mass(static_cast<size_t>(H * T)), entropy(static_cast<size_t>(H * T)),
      max_weight(static_cast<size_t>(H * T));
  std::vector<int64_t> argmax(static_cast<size_t>(H * T));
  ms::FusedAttentionStats stats;
  stats.batch = 1, stats.n_heads = H;
  stats.key_mass = key_mass.data(), stats.key_positions = T;
  stats.entropy = entropy.data(), stats.argmax = argmax.data(), stats.max_weight = max_weight.data();
  stats.query_positions = T;
  ms::FusedAttentionOptions plain;
  plain.scale = 0.125;
  ms::FusedAttentionOptions with_stats = plain;
  with_stats.stats = &stats;
  ms::FusedAttentionOptions rows_only = plain;
  ms::FusedAttentionStats row_stats = stats;
  row_stats.key_mass = nullptr;
  rows_only.stats = &row_stats;
  {
    // The tile products alone, one thread, on one query tile's shapes (72 rows, d_head 64, a key
    // tile of 128: scores against K^T packed in 16-key blocks, then weights times V), data in cache,
    // against the 1-thread GEMM peak: what the kernel's own GEMM reaches before any softmax.
    at::set_num_threads(1);
    const int64_t rows = 72, nk = 128;
    at::Tensor a = at::randn({rows, dh}), kt = at::randn({nk * dh}), w = at::randn({rows, nk}), vt = at::randn({nk, dh});
    at::Tensor sc = at::empty({rows, nk}), acc = at::zeros({rows, dh});
    const ms::TileKernels& kn = ms::tile_kernels();
    const int iters = 2000;
    const double t_tiles = ms::bench::best_of(3, [&] {
      for (int it = 0; it < iters; ++it) {
        kn.gemm(a.data_ptr<float>(), dh, kt.data_ptr<float>(), 16, dh * 16, sc.data_ptr<float>(), nk, rows, dh, nk, false);
        kn.gemm(w.data_ptr<float>(), nk, vt.data_ptr<float>(), dh, 16, acc.data_ptr<float>(), dh, rows, nk, dh, true);
      }
    });
    const double rate = 2.0 * 2.0 * rows * dh * nk * iters / t_tiles / 1e9, peak1 = ms::bench::gemm_peak_gflops(3);
    std::printf("tile products alone (%s; 72 rows, d_head 64, 128 keys), 1 thread: %.1f GFLOP/s = %.0f%% of the "
                "1-thread GEMM peak %.1f\n", kn.name, rate, 100 * rate / peak1, peak1);
  }
  for (int64_t n : threads) {
    at::set_num_threads(static_cast<int>(n));
    ms::bench::print_machine("bench_attention");
    const double peak = ms::bench::gemm_peak_gflops(3);
    const double floor_s = flops / peak / 1e9;
    std::vector<double> t = ms::bench::median_interleaved(
        static_cast<int>(reps), {[&] { ms::fused_attention(q, k, v, plain); },
                                 [&] { ms::fused_attention(q, k, v, rows_only); },
                                 [&] { ms::fused_attention(q, k, v, with_stats); }});
    std::printf("T = %lld, %lld heads (%lld KV), d_head %lld, %lld threads, kernels %s: GEMM peak %.1f GFLOP/s, "
                "FLOP floor %.3f s (%.1f GFLOP)\n",
                static_cast<long long>(T), static_cast<long long>(H), static_cast<long long>(KV),
                static_cast<long long>(dh), static_cast<long long>(n), ms::fused_attention_kernels(), peak, floor_s,
                flops / 1e9);
    const char* names[3] = {"attention alone", "+ row statistics", "+ row statistics and key mass"};
    for (int i = 0; i < 3; ++i)
      std::printf("  %-32s %.3f s = %.2fx the floor\n", names[i], t[static_cast<size_t>(i)],
                  t[static_cast<size_t>(i)] / floor_s);
    // One decode step's attention over a KV cache: its floor is reading the cache's K and V once
    // at the copy bandwidth measured now (bytes read + written, as bench_retrieval's floor).
    const double bw = decode_list.empty() ? 0 : ms::bench::copy_bandwidth_gbs(3);
    for (int64_t kv : ms::bench::parse_list(decode_list)) {
      at::Tensor qd = at::randn({1, 1, H, dh}), kd = at::randn({1, KV, kv, dh}), vd = at::randn({1, KV, kv, dh});
      ms::FusedAttentionOptions o = plain;
      o.past = kv - 1;
      ms::FusedAttentionStats ds;
      std::vector<int64_t> am(static_cast<size_t>(H * kv));
      ds.batch = 1, ds.n_heads = H, ds.argmax = am.data(), ds.query_positions = kv;
      ms::FusedAttentionOptions oa = o;
      oa.stats = &ds;
      std::vector<double> d = ms::bench::median_interleaved(
          static_cast<int>(reps) * 20, {[&] { ms::fused_attention(qd, kd, vd, o); }, [&] { ms::fused_attention(qd, kd, vd, oa); }});
      const double bytes = 2.0 * KV * kv * dh * 4, floor_d = bytes / (bw * 1e9);
      std::printf("  decode, KV %lld: %.3f ms = %.2fx its memory floor (K + V %.1f MB at copy bandwidth %.1f GB/s: "
                  "%.3f ms); with the argmax (retrieval) %.3f ms = %.2fx\n",
                  static_cast<long long>(kv), d[0] * 1e3, d[0] / floor_d, bytes / 1e6, bw, floor_d * 1e3, d[1] * 1e3,
                  d[1] / floor_d);
    }
  }
  return 0;
}
