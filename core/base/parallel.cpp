// ms::parallel_for on the process's OpenMP runtime (see parallel.h for why not at::parallel_for).
#include "core/base/parallel.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>

namespace ms {
namespace {

// The libgomp entry points (GCC's ABI; LLVM's libomp exports the same for compatibility).
using GompParallel = void (*)(void (*)(void*), void*, unsigned, unsigned);
using OmpInt = int (*)();

struct Runtime {
  GompParallel parallel = nullptr;
  OmpInt thread_num = nullptr, in_parallel = nullptr;
  Runtime() {
    parallel = reinterpret_cast<GompParallel>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
    thread_num = reinterpret_cast<OmpInt>(dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
    in_parallel = reinterpret_cast<OmpInt>(dlsym(RTLD_DEFAULT, "omp_in_parallel"));
    if (!thread_num || !in_parallel) parallel = nullptr;
  }
};

const Runtime& runtime() {
  static const Runtime r;
  return r;
}

struct Job {
  int64_t begin, end, chunk;
  const std::function<void(int64_t, int64_t)>* f;
  OmpInt thread_num;
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
};

void run_chunk(void* data) {
  Job& job = *static_cast<Job*>(data);
  const int64_t lo = job.begin + job.thread_num() * job.chunk;
  const int64_t hi = std::min(job.end, lo + job.chunk);
  if (lo >= hi || job.failed.load(std::memory_order_relaxed)) return;
  try {
    (*job.f)(lo, hi);
  } catch (...) {
    std::lock_guard<std::mutex> lock(job.error_mutex);
    if (!job.error) job.error = std::current_exception();
    job.failed.store(true, std::memory_order_relaxed);
  }
}

}  // namespace

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  if (begin >= end) return;
  const Runtime& rt = runtime();
  if (!rt.parallel) {
    at::parallel_for(begin, end, grain, f);
    return;
  }
  const int64_t n = end - begin, g = std::max<int64_t>(1, grain);
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), (n + g - 1) / g);
  if (threads <= 1 || rt.in_parallel()) {
    f(begin, end);
    return;
  }
  Job job;
  job.begin = begin, job.end = end, job.chunk = (n + threads - 1) / threads;
  job.f = &f;
  job.thread_num = rt.thread_num;
  rt.parallel(&run_chunk, &job, static_cast<unsigned>(threads), 0);
  if (job.error) std::rethrow_exception(job.error);
}

const char* parallel_runtime() {
  return runtime().parallel ? "OpenMP (GOMP_parallel)" : "ATen (no OpenMP runtime loaded)";
}

}  // namespace ms
