// ms::parallel_for (core/base/parallel.h): it really runs on several threads when ATen is set to
// more than one (at::parallel_for compiled into code without -fopenmp does not: the bug this
// replaced), covers the range exactly once in at most ceil(n / grain) contiguous chunks, runs nested
// calls inline, rethrows a worker's exception, and no code of ours calls at::parallel_for.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/base/parallel.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

struct ThreadCount {  // restores ATen's thread count
  int saved = at::get_num_threads();
  ~ThreadCount() { at::set_num_threads(saved); }
};

TEST(Parallel, CoversTheRangeOnceInContiguousChunks) {
  ThreadCount keep;
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    for (int64_t n : {1, 2, 7, 100, 1001})
      for (int64_t grain : {1, 4, 64}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::mutex mu;
        std::vector<std::pair<int64_t, int64_t>> chunks;
        parallel_for(5, 5 + n, grain, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) hits[static_cast<size_t>(i - 5)]++;
          std::lock_guard<std::mutex> lock(mu);
          chunks.emplace_back(lo, hi);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << n << " " << grain;
        ASSERT_LE(static_cast<int64_t>(chunks.size()), std::max<int64_t>(1, std::min<int64_t>(threads, (n + grain - 1) / grain)));
      }
  }
  parallel_for(3, 3, 1, [](int64_t, int64_t) { FAIL() << "an empty range runs nothing"; });
}

TEST(Parallel, UsesSeveralThreadsWhenAtenHasThem) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "one CPU";
  ThreadCount keep;
  at::set_num_threads(2);
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::atomic<int> inside{0}, most{0};
  parallel_for(0, 2, 1, [&](int64_t, int64_t) {
    const int now = ++inside;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {}
    {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    }
    // Both chunks wait for each other for up to 2 s: only concurrent workers get past at once.
    auto t0 = std::chrono::steady_clock::now();
    while (most.load() < 2 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2)) std::this_thread::yield();
    --inside;
  });
  EXPECT_EQ(ids.size(), 2u) << "runtime: " << parallel_runtime();
  EXPECT_EQ(most.load(), 2) << "the two chunks never ran at the same time";
}

TEST(Parallel, NestedCallsRunInlineAndErrorsComeBack) {
  ThreadCount keep;
  at::set_num_threads(2);
  std::atomic<int> inner_chunks{0};
  parallel_for(0, 2, 1, [&](int64_t, int64_t) {
    parallel_for(0, 100, 1, [&](int64_t lo, int64_t hi) {
      EXPECT_EQ(hi - lo, 100) << "a nested call splits";
      ++inner_chunks;
    });
  });
  EXPECT_EQ(inner_chunks.load(), 2);
  EXPECT_THROW(parallel_for(0, 10, 1,
                            [](int64_t lo, int64_t) {
                              if (lo > 0) throw std::runtime_error("worker failed");
                            }),
               std::runtime_error);
  // ATen's own parallel operations inside a worker still give the right answer.
  at::Tensor a = at::randn({64, 64});
  std::vector<at::Tensor> out(2);
  parallel_for(0, 2, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[static_cast<size_t>(i)] = at::mm(a, a).sum();
  });
  EXPECT_NEAR(out[0].item<double>(), at::mm(a, a).sum().item<double>(), 1e-3);
  EXPECT_NEAR(out[1].item<double>(), out[0].item<double>(), 1e-6);
}

// at::parallel_for's OpenMP version is a header template: in our code (built without -fopenmp)
// it runs on one thread. Every loop of ours goes through ms::parallel_for instead.
TEST(Parallel, NoCodeOfOursCallsAtenParallelFor) {
  namespace fs = std::filesystem;
  std::vector<std::string> found;
  for (const char* dir : {"core", "hooks", "storage", "runs", "views", "app", "report", "bench"}) {
    fs::path root = fs::path(test::source_dir()) / dir;
    if (!fs::exists(root)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      const std::string ext = e.path().extension().string();
      if (!e.is_regular_file() || (ext != ".cpp" && ext != ".h" && ext != ".cu")) continue;
      if (e.path().filename() == "parallel.cpp") continue;  // its fallback where no OpenMP is loaded
      std::ifstream in(e.path());
      std::stringstream text;
      text << in.rdbuf();
      const std::string s = text.str();
      if (s.find("at::parallel_for(") != std::string::npos || s.find("at::parallel_reduce(") != std::string::npos)
        found.push_back(e.path().string());
    }
  }
  EXPECT_TRUE(found.empty()) << "at::parallel_for in " << (found.empty() ? "" : found.front());
}

}  // namespace
}  // namespace ms
