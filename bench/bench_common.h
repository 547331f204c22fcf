// Shared pieces of the benchmarks: the Llama-shaped random model of the long-context benchmarks
// (8 layers, d_model 1024, 16 heads, 4 KV heads), cached under the temp folder, peak memory, and
// the machine line every benchmark prints (CPU, OpenBLAS core type, threads, load average).
#pragma once

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "core/model/model.h"
#include "core/zoo/zoo_random.h"

namespace ms::bench {

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

// One line on the machine and its load, for every benchmark's header (figures on a shared
// machine are only comparable with the load they ran under).
inline void print_machine(const char* who) {
  double load[3] = {-1, -1, -1};
  getloadavg(load, 3);
  std::printf("%s: CPU %s; %s; %d threads; load average %.2f %.2f %.2f\n", who, cpu_model().c_str(),
              openblas_core().c_str(), at::get_num_threads(), load[0], load[1], load[2]);
}

}  // namespace ms::bench
