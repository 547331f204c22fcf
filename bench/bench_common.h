// Shared pieces of the benchmarks: the Llama-shaped random model of the long-context benchmarks
// (8 layers, d_model 1024, 16 heads, 4 KV heads), cached under the temp folder, peak memory, and
// the machine line every benchmark prints (CPU, OpenBLAS core type, threads, load average).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "core/base/malloc_reuse.h"
#include "core/base/parallel.h"
#include "core/model/model.h"
#include "core/zoo/zoo_random.h"

namespace ms::bench {

// "a,b,c" -> {a, b, c} (a command-line list of lengths).
inline std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  size_t at = 0;
  while (at < s.size()) {
    size_t comma = s.find(',', at);
    out.push_back(std::atoll(s.substr(at, comma == std::string::npos ? std::string::npos : comma - at).c_str()));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

// Loads (writing it first when absent) the long-context benchmark model; exits on failure.
inline std::unique_ptr<Model> long_context_model(const char* who) {
  std::string dir = (std::filesystem::temp_directory_path() / "mechscope-bench-llama-1024").string();
  if (!std::filesystem::exists(std::filesystem::path(dir) / "model.safetensors")) {
    RandomModelSpec s;
    s.arch = "llama";
    s.n_layers = 8;
    s.d_model = 1024;
    s.n_heads = 16;
    s.n_kv_heads = 4;
    s.d_vocab = 32000;
    s.n_ctx = 32768;
    s.init_std = 0.05;
    Status st = write_random_model(s, dir, true);
    if (!st) {
      std::fprintf(stderr, "%s: %s\n", who, st.error().message.c_str());
      std::exit(1);
    }
  }
  Result<std::unique_ptr<Model>> loaded = Model::load(dir);
  if (!loaded) {
    std::fprintf(stderr, "%s: %s\n", who, loaded.error().message.c_str());
    std::exit(1);
  }
  return std::move(*loaded);
}

// The weights' size in GiB.
inline double weights_gib(const Model& m) {
  double bytes = 0;
  for (const auto& kv : m.weights().named()) bytes += static_cast<double>(kv.second.nbytes());
  return bytes / (1024.0 * 1024.0 * 1024.0);
}

// Peak resident memory of this process so far, in GiB.
inline double peak_rss_gib() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB
}

using BenchClock = std::chrono::steady_clock;

inline double seconds_since(BenchClock::time_point t0) {
  return std::chrono::duration<double>(BenchClock::now() - t0).count();
}

// Best time of reps calls of f after one warm-up call.
inline double best_of(int reps, const std::function<void()>& f) {
  f();  // warm up
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = BenchClock::now();
    f();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

// The median of a list of times (the upper one of an even count; 0 for none).
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median times of several variants measured in turns (A B C A B C ...), after one warm-up call
// of each: a change in the machine's load hits them alike, and the median is robust to the
// stray slow turn a shared machine gives either variant.
inline std::vector<double> median_interleaved(int reps, const std::vector<std::function<void()>>& fs,
                                              bool warm_up = true) {
  std::vector<std::vector<double>> t(fs.size());
  if (warm_up)
    for (const auto& f : fs) f();
  for (int i = 0; i < reps; ++i)
    for (size_t j = 0; j < fs.size(); ++j) {
      auto t0 = BenchClock::now();
      fs[j]();
      t[j].push_back(seconds_since(t0));
    }
  std::vector<double> out;
  for (auto& v : t) out.push_back(median(std::move(v)));
  return out;
}

// Drops a file's clean pages from the page cache (posix_fadvise DONTNEED; no root needed), so
// the next read comes from the disk (or whatever caches below the kernel: a VM host's).
inline void drop_from_page_cache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// Runs f(begin, end) on each thread's slice of n bytes, the slices equal and multiples of align
// (the last one takes the rest, rounded down to align), over the current ATen thread count.
inline void for_byte_slices(size_t n, size_t align, const std::function<void(int, size_t, size_t)>& f) {
  const int threads = std::max(1, at::get_num_threads());
  ms::parallel_for(0, threads, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const size_t begin = n / threads * i / align * align;
      const size_t end = i + 1 == threads ? n / align * align : n / threads * (i + 1) / align * align;
      f(static_cast<int>(i), begin, end);
    }
  });
}

// memcpy of n bytes split in equal parts over the current ATen thread count.
inline void parallel_copy(char* dst, const char* src, size_t n) {
  for_byte_slices(n, 1, [&](int, size_t begin, size_t end) { std::memcpy(dst + begin, src + begin, end - begin); });
}

// Reads n bytes (rounded down to 32) split over the current ATen thread count (a sum of 64-bit
// words, four chains a thread), returning the sum so that the reads cannot be dropped: the
// read-only bandwidth that a memory-bound kernel which only reads (a GEMV over weights, attention
// over a KV cache) can reach.
inline uint64_t parallel_read(const char* src, size_t n) {
  std::vector<uint64_t> part(static_cast<size_t>(std::max(1, at::get_num_threads())), 0);
  for_byte_slices(n, 32, [&](int i, size_t begin, size_t end) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, w[4];
    for (size_t j = begin; j < end; j += 32) {
      std::memcpy(w, src + j, 32);
      a0 += w[0], a1 += w[1], a2 += w[2], a3 += w[3];
    }
    part[static_cast<size_t>(i)] = a0 + a1 + a2 + a3;
  });
  uint64_t s = 0;
  for (uint64_t v : part) s += v;
  return s;
}

// n bytes set to v, from ATen's allocator: on the same kind of pages as the weights and the KV cache
// a benchmark sets against them (huge pages when huge_pages_for_large_tensors is on;
// core/base/malloc_reuse.h).
inline at::Tensor byte_buffer(size_t n, int v) {
  ms::HugePagesScope huge;
  return at::full({static_cast<int64_t>(n)}, v, at::kChar);
}

// Copy bandwidth in GB/s (bytes read + bytes written per second, as a memory-bound kernel that
// reads its operands counts them): the best of reps memcpy calls of a 512 MiB buffer, far beyond
// the last-level cache, split over the current ATen thread count.
inline double copy_bandwidth_gbs(int reps) {
  const size_t n = size_t(512) << 20;
  at::Tensor a = byte_buffer(n, 1), b = byte_buffer(n, 2);
  double t = best_of(reps, [&] { parallel_copy(static_cast<char*>(b.data_ptr()), static_cast<char*>(a.data_ptr()), n); });
  return 2.0 * static_cast<double>(n) / t / 1e9;
}

// Best f32 GEMM rate (GFLOP/s) at the current thread count, over a few shapes: square ones and
// the GPT-2 model's own largest products.
inline double gemm_peak_gflops(int reps) {
  struct Shape { int64_t m, k, n; };
  std::vector<Shape> shapes{{1024, 1024, 1024}, {2048, 2048, 2048}, {512, 768, 3072}, {512, 3072, 768}};
  double best = 0;
  for (const Shape& s : shapes) {
    at::Tensor a = at::randn({s.m, s.k}), b = at::randn({s.k, s.n});
    double t = best_of(reps, [&] { at::mm(a, b); });
    best = std::max(best, 2.0 * s.m * s.k * s.n / t / 1e9);
  }
  return best;
}

// Model FLOPs of one forward pass: 2 per weight per token for every matrix (unembedding
// included, embeddings' lookups excluded) plus the two attention products over the full
// T x T square, as the materialising path computes it.
inline double forward_flops(const ModelConfig& c, int64_t t) {
  double per_layer = static_cast<double>(c.d_model) * (c.q_dim() + 2 * c.kv_dim()) +
                     static_cast<double>(c.q_dim()) * c.d_model +
                     (c.gated_mlp ? 3.0 : 2.0) * c.d_model * c.d_mlp;
  double weights = per_layer * c.n_layers + static_cast<double>(c.d_model) * c.d_vocab;
  double attn = 2.0 * 2.0 * t * t * c.q_dim() * c.n_layers;
  return 2.0 * t * weights + attn;
}

// FLOPs of causal attention's two products (scores, then weights times values) over the
// T (T + 1) / 2 visible (query, key) pairs: the attention part's floor.
inline double causal_attention_flops(const ModelConfig& c, int64_t t) {
  return 2.0 * 2.0 * c.q_dim() * (static_cast<double>(t) * (t + 1) / 2) * c.n_layers;
}

// The forward's floor in FLOPs: every weight matrix (2 per weight per token) plus causal attention.
inline double causal_forward_flops(const ModelConfig& c, int64_t t) {
  return forward_flops(c, t) - 2.0 * 2.0 * t * t * c.q_dim() * c.n_layers + causal_attention_flops(c, t);
}

// The CPU's model name from /proc/cpuinfo ("unknown" elsewhere).
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  return "unknown";
}

// OpenBLAS's kernel set: the OPENBLAS_CORETYPE override and, when the loaded BLAS is OpenBLAS,
// the core it chose (openblas_get_corename, looked up at run time).
inline std::string openblas_core() {
  const char* env = std::getenv("OPENBLAS_CORETYPE");
  std::string out = std::string("OPENBLAS_CORETYPE=") + (env ? env : "(unset)");
  using CoreName = char* (*)();
  if (auto f = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename")))
    out += std::string(", openblas_get_corename()=") + f();
  else
    out += ", openblas_get_corename not found (not OpenBLAS?)";
  return out;
}

// The kernel's transparent-huge-page mode, as /sys/kernel/mm/transparent_hugepage/enabled marks it
// ("always", "madvise" or "never"; "?" where the file cannot be read).
inline std::string thp_mode() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(f, line);
  const size_t a = line.find('['), b = line.find(']');
  return a != std::string::npos && b > a ? line.substr(a + 1, b - a - 1) : "?";
}

// One line on the machine and its load, for every benchmark's header (figures on a shared
// machine are only comparable with the load they ran under).
inline void print_machine(const char* who) {
  double load[3] = {-1, -1, -1};
  getloadavg(load, 3);
  std::printf("%s: CPU %s; %s; %d threads (mechscope's own loops: %s); load average %.2f %.2f %.2f; tensors >= 4 MiB "
              "on huge pages: %s (THP %s)\n", who, cpu_model().c_str(), openblas_core().c_str(), at::get_num_threads(),
              ms::parallel_runtime(), load[0], load[1], load[2],
              ms::huge_pages_for_large_tensors_active() ? "asked" : "no", thp_mode().c_str());
}

}  // namespace ms::bench
