// Retrieval-head benchmark (issue: retrieval heads): on a Llama-shaped random model (8 layers,
// d_model 1024, 16 heads, 4 KV heads), 50 greedy decode steps with the KV cache and the per-step
// argmax observer after an 8,192-token prefill, against the prefill alone; then the peak resident
// memory of one 32,768-token needle test against weights + KV cache (--long 0 skips it).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "bench/bench_common.h"
#include "core/model/model.h"
#include "core/analysis/retrieval/retrieval.h"

using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

ms::NeedleEpisode random_episode(int64_t T, int64_t vocab, uint64_t seed, int64_t max_new) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  at::Tensor t = at::randint(2, vocab, {T}, g, at::kLong);
  ms::NeedleEpisode ep;
  for (int64_t i = 0; i < T; ++i) ep.prompt.push_back(static_cast<int32_t>(t[i].item<int64_t>()));
  ep.prompt[0] = 1;
  ep.needle_begin = T / 2;
  ep.needle_end = T / 2 + 16;
  ep.answer.assign(ep.prompt.begin() + ep.needle_begin + 1, ep.prompt.begin() + ep.needle_end);
  ep.max_new = max_new;
  return ep;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t long_t = 32768, prefill_t = 8192, steps = 50;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--long" && i + 1 < argc) long_t = std::atoll(argv[++i]);
    else if (a == "--prefill" && i + 1 < argc) prefill_t = std::atoll(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atoll(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_retrieval [--prefill T] [--steps N] [--long T (0: skip)]\n");
      return 2;
    }
  }
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  ms::bench::print_machine("bench_retrieval");
  std::unique_ptr<ms::Model> model = ms::bench::long_context_model("bench_retrieval");
  ms::Model& m = *model;
  const ms::ModelConfig& c = m.config();
  const double weights_gib = ms::bench::weights_gib(m);
  std::printf("mechscope retrieval benchmark: Llama-shaped random model, %lld layers, d_model %lld, %lld heads, "
              "%lld KV heads; weights %.2f GiB; %d threads\n", static_cast<long long>(c.n_layers),
              static_cast<long long>(c.d_model), static_cast<long long>(c.n_heads),
              static_cast<long long>(c.n_kv_heads), weights_gib, at::get_num_threads());

  // Long context first, so the peak resident memory is this test's.
  if (long_t > 0) {
    ms::RetrievalOptions ro;
    ro.max_new = steps;
    auto t0 = Clock::now();
    ms::EpisodeResult r = ms::run_needle_episode(m, random_episode(long_t, c.d_vocab, 3, steps), ro);
    double s = seconds(t0);
    double kv_gib = 2.0 * static_cast<double>(c.n_layers * c.n_kv_heads * c.d_head) *
                    static_cast<double>(long_t + steps) * 4 / (1024.0 * 1024 * 1024);
    double peak = ms::bench::peak_rss_gib();
    std::printf("one needle test at T = %lld (+%zu decoded): %.1f s; peak resident %.2f GiB = weights %.2f + KV "
                "cache %.2f + %.2f GiB (target: under 1 GiB)\n", static_cast<long long>(long_t), r.generated.size(),
                s, peak, weights_gib, kv_gib, peak - weights_gib - kv_gib);
  }

  // Prefill alone against prefill + decode steps with the argmax observer, interleaved.
  ms::NeedleEpisode ep = random_episode(prefill_t, c.d_vocab, 4, steps);
  ms::RetrievalOptions one;
  one.max_new = 1;  // the prefill and its first token only
  ms::RetrievalOptions all;
  all.max_new = steps;
  double best_prefill = 1e30, best_all = 1e30;
  size_t decoded = 0;
  for (int rep = 0; rep < 2; ++rep) {
    auto t0 = Clock::now();
    (void)ms::run_needle_episode(m, ep, one, {}, false);
    best_prefill = std::min(best_prefill, seconds(t0));
    t0 = Clock::now();
    decoded = ms::run_needle_episode(m, ep, all, {}, true).generated.size();
    best_all = std::min(best_all, seconds(t0));
  }
  std::printf("prefill %lld tokens: %.2f s; prefill + %zu greedy steps with per-step argmax scoring: %.2f s = "
              "%.2fx the prefill (target: at most 1.5x); %.1f ms per decode step\n",
              static_cast<long long>(prefill_t), best_prefill, decoded, best_all, best_all / best_prefill,
              1000 * (best_all - best_prefill) / std::max<double>(1.0, static_cast<double>(decoded) - 1));
  return 0;
}
