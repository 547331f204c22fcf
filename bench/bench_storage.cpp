// Storage benchmark: the per-head scores of a 32-layer x 32-head model for 1,000 prompts (one
// batch-item run per prompt, 1,024,000 score rows) stored in one transaction, then read back.
// The bar is under 5 s for the insert.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "bench/bench_common.h"
#include "storage/database.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  ms::bench::print_machine("bench_storage");
  const int n_layers = 32, n_heads = 32, n_prompts = argc > 1 ? std::atoi(argv[1]) : 1000;
  fs::path dir = fs::temp_directory_path() / ("mechscope-bench-storage-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string path = (dir / "bench.db").string();
  auto db = ms::Database::open(path);
  if (!db) {
    std::fprintf(stderr, "bench_storage: %s\n", db.error().message.c_str());
    return 1;
  }
  ms::ModelInfo model{0, "/models/bench-32x32", "llama", "{\"n_layers\":32,\"n_heads\":32}", "sha256:bench", 7000000000, ""};
  int64_t model_id = (*db)->register_model(model).value();

  std::vector<ms::RunWrite> runs(n_prompts);
  for (int p = 0; p < n_prompts; ++p) {
    ms::RunWrite& w = runs[p];
    w.spec.kind = "batch-item";
    w.spec.model_id = model_id;
    w.spec.resume_key = "prompt-" + std::to_string(p);
    w.results.inputs.push_back({0, "prompt number " + std::to_string(p), {1, 2, 3, 4}, {}});
    ms::HeadScores h{"sink_rate", n_layers, n_heads, {}};
    h.values.resize(n_layers * n_heads);
    for (size_t i = 0; i < h.values.size(); ++i) h.values[i] = std::fmod(0.618034 * (p * 1024 + i), 1.0);
    w.results.scores.push_back(std::move(h));
  }
  int64_t rows = static_cast<int64_t>(n_prompts) * n_layers * n_heads;

  auto t0 = Clock::now();
  auto ids = (*db)->store_runs(runs);
  double insert_s = seconds_since(t0);
  if (!ids) {
    std::fprintf(stderr, "bench_storage: %s\n", ids.error().message.c_str());
    return 1;
  }
  t0 = Clock::now();
  int64_t read_rows = 0;
  for (int64_t id : *ids) {
    auto s = (*db)->get_head_scores(id);
    if (!s) return 1;
    for (const auto& h : *s) read_rows += static_cast<int64_t>(h.values.size());
  }
  double read_s = seconds_since(t0);
  db->reset();
  uintmax_t bytes = fs::file_size(path);
  std::error_code ec;
  if (fs::exists(path + "-wal", ec)) bytes += fs::file_size(path + "-wal");

  std::printf("storage: %d prompts x %d layers x %d heads = %lld score rows in one transaction\n", n_prompts,
              n_layers, n_heads, static_cast<long long>(rows));
  std::printf("  insert  %.3f s  (%.0f rows/s)  bar: < 5 s  %s\n", insert_s, rows / insert_s,
              insert_s < 5.0 ? "PASS" : "FAIL");
  std::printf("  read    %.3f s  (%.0f rows/s, %lld rows, per run)\n", read_s, read_rows / read_s,
              static_cast<long long>(read_rows));
  std::printf("  file    %.1f MB (%.1f bytes/row)\n", bytes / 1e6, static_cast<double>(bytes) / rows);
  fs::remove_all(dir, ec);
  return insert_s < 5.0 ? 0 : 1;
}
