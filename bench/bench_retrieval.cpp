// Retrieval-head benchmark (issue: retrieval heads): on a Llama-shaped random model (8 layers,
// d_model 1024, 16 heads, 4 KV heads), 50 greedy decode steps with the KV cache and the per-step
// argmax observer after an 8,192-token prefill, against the prefill alone; then the peak resident
// memory of one 32,768-token needle test against weights + KV cache (--long 0 skips it); and
// single decode steps at a few KV lengths against their memory floor (weights + KV cache bytes
// over the copy bandwidth measured in the same run).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.h"
#include "core/base/gemv.h"
#include "bench/op_profile.h"
#include "core/base/malloc_reuse.h"
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

// Decode steps against their memory floor: each step at KV length n must read every weight it
// multiplies by (the layers' matrices, norms and the unembedding; one row of the embedding) and
// the KV cache up to n; floor = those bytes / the copy bandwidth measured in the same run. The
// cache is rewound after each step so every timed step sees the same length.
void decode_floor(ms::Model& m, const std::vector<int64_t>& lengths, int reps, bool profile) {
  const ms::ModelConfig& c = m.config();
  c10::InferenceMode guard;
  double weight_bytes = 0;
  for (const auto& kv : m.weights().named())
    if (!kv.second.is_same(m.weights().w_e) || m.weights().w_u.is_same(m.weights().w_e))
      weight_bytes += static_cast<double>(kv.second.nbytes());
  weight_bytes += static_cast<double>(c.d_model) * m.weights().w_e.element_size();  // the one row looked up
  const int64_t cap = *std::max_element(lengths.begin(), lengths.end()) + 1;
  ms::KVCache cache = m.make_cache(1, cap);
  // Fill the cache once (random keys and values: the step's cost does not depend on them).
  for (size_t l = 0; l < cache.k.size(); ++l) {
    cache.k[l].normal_();
    cache.v[l].normal_();
  }
  at::Tensor token = at::full({1, 1}, 7, at::kLong);
  ms::ForwardOptions fo;
  fo.cache = &cache;
  fo.last_logits_only = true;
  std::vector<std::function<void()>> steps;
  for (int64_t n : lengths)
    steps.push_back([&, n] {
      cache.length = n;
      (void)m.forward(token, fo).argmax().item<int64_t>();
    });
  // The copy that sets the floor runs interleaved with the steps, and each step is set against the
  // copy of its own round (the median of those ratios): on a shared machine the memory bandwidth
  // drifts by a third between runs and within one, and a copy timed once before the steps would
  // compare them with another moment's bandwidth. After the copy, an untimed read of 64 MiB
  // writes its dirty lines back before the next step starts.
  const size_t copy_n = size_t(512) << 20, flush_n = size_t(64) << 20;
  // On the same kind of pages as the weights (ATen's allocator: huge pages when they are asked for).
  at::Tensor src_t = ms::bench::byte_buffer(copy_n, 1), dst_t = ms::bench::byte_buffer(copy_n, 2),
             flush_t = ms::bench::byte_buffer(flush_n, 3);
  const char* src = static_cast<char*>(src_t.data_ptr());
  const char* flush = static_cast<char*>(flush_t.data_ptr());
  auto copy = [&] { ms::bench::parallel_copy(static_cast<char*>(dst_t.data_ptr()), src, copy_n); };
  volatile uint64_t sink = 0;
  auto flush_read = [&] {
    uint64_t acc = 0;
    for (size_t i = 0; i < flush_n; i += 64) acc += static_cast<unsigned char>(flush[i]);
    sink = sink + acc;
  };
  for (auto& f : steps) f();  // warm-up
  copy();
  std::vector<double> copy_t, read_t;
  std::vector<std::vector<double>> step_t(steps.size());
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    copy();
    copy_t.push_back(seconds(t0));
    t0 = Clock::now();
    sink = sink + ms::bench::parallel_read(src, copy_n);
    read_t.push_back(seconds(t0));
    flush_read();
    for (size_t i = 0; i < steps.size(); ++i) {
      auto ts = Clock::now();
      steps[i]();
      step_t[i].push_back(seconds(ts));
    }
  }
  using ms::bench::median;
  if (profile) {  // where a step's time goes, at the first length (bench/op_profile.h)
    ms::bench::OpProfile p;
    for (int r = 0; r < reps; ++r) steps[0]();
    p.stop();
    p.print(("decode, " + std::to_string(reps) + " steps at KV length " + std::to_string(lengths[0])).c_str());
  }
  const double bw = 2.0 * static_cast<double>(copy_n) / median(copy_t);
  const double read_bw = static_cast<double>(copy_n) / median(read_t);
  ms::bench::print_machine("bench_retrieval");
  std::printf("decode against its memory floor: copy bandwidth %.1f GB/s (median of memcpy of 512 MiB interleaved "
              "with the steps, bytes read + written, %d threads; each step against its own round's copy); read-only "
              "bandwidth %.1f GB/s (a sum over the same 512 MiB, each round); weights read per step %.0f MB; medians "
              "of %d rounds, lengths interleaved\n", bw / 1e9, at::get_num_threads(), read_bw / 1e9,
              weight_bytes / 1e6, reps);
  std::vector<double> t;
  for (const auto& v : step_t) t.push_back(median(v));
  for (size_t i = 0; i < lengths.size(); ++i) {
    const double kv_bytes = 2.0 * static_cast<double>(c.n_layers * c.n_kv_heads * c.d_head) *
                            static_cast<double>(lengths[i] + 1) * static_cast<double>(cache.k[0].element_size());
    const double floor = (weight_bytes + kv_bytes) / bw;
    // Each round's step against that round's floor, bytes over the bandwidth moved bytes_moved in t[r].
    auto ratio = [&](double bytes_moved, const std::vector<double>& bw_t) {
      std::vector<double> r(static_cast<size_t>(reps));
      for (int j = 0; j < reps; ++j) r[j] = step_t[i][j] / ((weight_bytes + kv_bytes) / (bytes_moved / bw_t[j]));
      return median(r);
    };
    const double rr = ratio(2.0 * static_cast<double>(copy_n), copy_t), rd = ratio(static_cast<double>(copy_n), read_t);
    std::printf("  KV length %6lld: step %.2f ms; floor %.2f ms (weights %.0f MB + KV cache %.0f MB); "
                "%.2fx the floor (target <= 1.5x; ratio of medians %.2fx); %.2fx the read-only floor\n",
                static_cast<long long>(lengths[i]), 1000 * t[i], 1000 * floor, weight_bytes / 1e6, kv_bytes / 1e6,
                rr, t[i] / floor, rd);
  }
  // The weight products' kernel alone (core/base/gemv.h) over as many bytes as a step's weights, in
  // rows of d_model, against a read-only pass over the same bytes, in turns (medians).
  const int64_t k = c.d_model, rows = static_cast<int64_t>(weight_bytes / 4) / k;
  at::Tensor w = at::randn({rows, k}), x = at::randn({k}), y = at::empty({rows});
  std::vector<double> g = ms::bench::median_interleaved(
      reps, {[&] { ms::gemv(w.data_ptr<float>(), k, x.data_ptr<float>(), nullptr, y.data_ptr<float>(), rows, k); },
             [&] { sink = sink + ms::bench::parallel_read(reinterpret_cast<const char*>(w.data_ptr<float>()),
                                                          static_cast<size_t>(w.nbytes())); }});
  std::printf("  GEMV (%s) alone over %.0f MB, rows of %lld: %.1f GB/s; a read of the same bytes %.1f GB/s\n",
              ms::gemv_kernels(), w.nbytes() / 1e6, static_cast<long long>(k), w.nbytes() / g[0] / 1e9,
              w.nbytes() / g[1] / 1e9);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  ms::keep_freed_memory_for_reuse();  // as mechscope does (core/base/malloc_reuse.h)
  ms::huge_pages_for_large_tensors();  // large tensors on transparent huge pages (core/base/malloc_reuse.h)
  int64_t long_t = 32768, prefill_t = 8192, steps = 50;
  std::vector<int64_t> decode_lengths{512, 4096, 16384};
  int decode_reps = 15;
  bool profile = false;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--long" && i + 1 < argc) long_t = std::atoll(argv[++i]);
    else if (a == "--prefill" && i + 1 < argc) prefill_t = std::atoll(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atoll(argv[++i]);
    else if (a == "--decode" && i + 1 < argc) decode_lengths = ms::bench::parse_list(argv[++i]);
    else if (a == "--decode-reps" && i + 1 < argc) decode_reps = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--profile") profile = true;
    else {
      std::fprintf(stderr, "usage: bench_retrieval [--prefill T (0: skip)] [--steps N] [--long T (0: skip)] "
                           "[--decode N1,N2 (\"\": skip)] [--decode-reps N] [--threads N] [--profile]\n");
      return 2;
    }
  }
  at::set_num_threads(threads);
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

  if (!decode_lengths.empty()) decode_floor(m, decode_lengths, decode_reps, profile);
  if (prefill_t <= 0) return 0;

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
