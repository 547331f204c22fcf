// Shared pieces of the benchmarks: the Llama-shaped random model of the long-context benchmarks
// (8 layers, d_model 1024, 16 heads, 4 KV heads), cached under the temp folder, and peak memory.
#pragma once

#include <sys/resource.h>

#include <cstdio>
#include <filesystem>
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

}  // namespace ms::bench
