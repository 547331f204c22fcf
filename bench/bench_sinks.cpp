// Sink-analysis benchmark (issue: attention sinks at long context): one 32,768-token prompt on a
// Llama-shaped random model (8 layers, d_model 1024, 16 heads, 4 KV heads) with its peak resident
// memory against the weights' size and the forward's FLOP floor at the GEMM peak, and at
// T = 4,096 the statistics from the fused kernel's pass, from the streaming (query-block)
// materialising path and from whole materialised patterns, measured in one run.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/attention/attention_stats.h"
#include "core/attention/fused_attention.h"
#include "bench/bench_common.h"
#include "core/base/malloc_reuse.h"
#include "bench/op_profile.h"
#include "core/model/model.h"
#include "core/analysis/sinks/sinks.h"

using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<int32_t> random_prompt(int64_t T, int64_t vocab, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  at::Tensor t = at::randint(2, vocab, {T}, g, at::kLong);
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(t[i].item<int64_t>());
  ids[0] = 1;
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  ms::keep_freed_memory_for_reuse();  // as mechscope does (core/base/malloc_reuse.h)
  ms::huge_pages_for_large_tensors();  // large tensors on transparent huge pages (core/base/malloc_reuse.h)
  int64_t long_t = 32768, short_t = 4096;
  bool profile = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--long" && i + 1 < argc) long_t = std::atoll(argv[++i]);
    else if (a == "--short" && i + 1 < argc) short_t = std::atoll(argv[++i]);
    else if (a == "--profile") profile = true;
    else {
      std::fprintf(stderr, "usage: bench_sinks [--long T (0: skip)] [--short T] [--profile]\n");
      return 2;
    }
  }
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  ms::bench::print_machine("bench_sinks");
  std::unique_ptr<ms::Model> model = ms::bench::long_context_model("bench_sinks");
  ms::Model& m = *model;
  const double weights_gib = ms::bench::weights_gib(m);
  std::printf("mechscope sink-analysis benchmark: Llama-shaped random model, 8 layers, d_model 1024, 16 heads, "
              "4 KV heads; weights %.2f GiB; %d threads\n", weights_gib, at::get_num_threads());

  if (profile) {  // where the analysis spends its time, at the short length (bench/op_profile.h)
    ms::bench::OpProfile p;
    auto tp = Clock::now();
    ms::analyze_sinks(m, {random_prompt(short_t, 32000, 3)}, ms::SinkOptions{});
    const double took = seconds(tp);
    p.stop();
    p.print(("sink analysis, T = " + std::to_string(short_t) + " (" + std::to_string(took) + " s)").c_str());
  }
  if (long_t <= 0) return 0;
  // Long context first, so the peak resident memory is this run's.
  auto t0 = Clock::now();
  ms::SinkReport r = ms::analyze_sinks(m, {random_prompt(long_t, 32000, 1)}, ms::SinkOptions{});
  double long_s = seconds(t0);
  double peak = ms::bench::peak_rss_gib();
  std::printf("T = %lld: %.1f s; peak resident memory %.2f GiB = weights + %.2f GiB (target: weights + 2 GiB; one "
              "layer's materialised patterns alone would need %.0f GiB); first-token sink rate %.1f%%\n",
              static_cast<long long>(long_t), long_s, peak, peak - weights_gib,
              16.0 * static_cast<double>(long_t) * static_cast<double>(long_t) * 4 / (1024.0 * 1024 * 1024),
              r.sink_rate_first);
  {
    // The analysis stops before the unembedding: its floor is the layers' FLOPs at the GEMM peak.
    const ms::ModelConfig& c = m.config();
    const double flops = ms::bench::causal_forward_flops(c, long_t) - 2.0 * long_t * c.d_model * c.d_vocab;
    const double peak = ms::bench::gemm_peak_gflops(3);
    std::printf("  GEMM peak %.1f GFLOP/s; FLOP floor %.1f s (%.0f GFLOP, attention part %.0f); analysis = %.2fx "
                "the floor (target <= 1.5x)\n", peak, flops / peak / 1e9, flops / 1e9,
                ms::bench::causal_attention_flops(c, long_t) / 1e9, long_s / (flops / peak / 1e9));
  }

  // At T = short_t: the statistics from the fused kernel's pass, from the materialising path's
  // query blocks (chosen to bound memory), and from one block holding every head's whole pattern.
  std::vector<int32_t> ids = random_prompt(short_t, 32000, 2);
  at::Tensor tokens = m.tokens_tensor(ids);
  auto run = [&](int64_t block, ms::AttentionKernel kernel) {
    ms::AttentionStats stats(8, 16, 1, short_t, ms::AttentionStatsOptions{true});
    ms::ForwardOptions fo;
    fo.attention = &stats;
    fo.stop_at_layer = 8;
    fo.attn_block = block;
    fo.attention_kernel = kernel;
    auto t = Clock::now();
    m.forward(tokens, fo);
    return std::make_pair(seconds(t), stats.alpha());
  };
  const int64_t calls = ms::fused_attention_calls();
  run(0, ms::AttentionKernel::kAuto);
  const bool took_fused = ms::fused_attention_calls() > calls;
  double best[3] = {1e30, 1e30, 1e30};
  at::Tensor alpha[3];
  for (int rep = 0; rep < 3; ++rep) {  // interleaved, so that the machine's load hits all alike
    auto f = run(0, ms::AttentionKernel::kAuto);
    auto s = run(0, ms::AttentionKernel::kMaterialise);
    auto w = run(short_t, ms::AttentionKernel::kMaterialise);
    best[0] = std::min(best[0], f.first), best[1] = std::min(best[1], s.first), best[2] = std::min(best[2], w.first);
    alpha[0] = f.second, alpha[1] = s.second, alpha[2] = w.second;
  }
  ms::bench::print_machine("bench_sinks");
  std::printf("T = %lld: fused%s %.2f s, streaming materialising %.2f s, whole patterns %.2f s; materialising / "
              "fused %.2fx, streaming / whole %.2fx (target <= 1.2x); max |alpha difference| fused %.1e, "
              "streaming %.1e (against whole patterns)\n",
              static_cast<long long>(short_t), took_fused ? "" : " (NOT TAKEN)", best[0], best[1], best[2],
              best[1] / best[0], best[1] / best[2], (alpha[0] - alpha[2]).abs().max().item<double>(),
              (alpha[1] - alpha[2]).abs().max().item<double>());
  return 0;
}
