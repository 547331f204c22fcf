// ms::parallel_for: at::parallel_for's contract, running on the OpenMP runtime LibTorch itself uses.
//
// Why not at::parallel_for: in a LibTorch built with the OpenMP backend (Debian's, and the PyTorch
// wheels) it is a header template whose `#pragma omp parallel` is compiled into the caller, so in
// code built without -fopenmp (clang cannot target libgomp, the runtime LibTorch and OpenBLAS load)
// it silently runs on one thread. This one starts the team through the runtime already loaded in
// the process (GOMP_parallel, found at run time), so every build gets the same threads as ATen,
// nested calls run inline, and ATen / BLAS calls inside a worker run single-threaded as ATen's own
// workers do. Where no OpenMP runtime is loaded it falls back to at::parallel_for (the native
// backend's thread pool is compiled into LibTorch).
#pragma once

#include <cstdint>
#include <functional>

namespace ms {

// As at::parallel_for: splits [begin, end) into min(at::get_num_threads(), ceil(n / grain))
// contiguous chunks of equal size (the last may be shorter), one per thread, and runs
// f(chunk_begin, chunk_end) on each in parallel; runs f(begin, end) inline when that is one chunk
// or the caller is already inside a parallel region. Exceptions thrown by f are rethrown (the first one) after the team ends.
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

// Which runtime parallel_for uses: "OpenMP (GOMP_parallel)" or "ATen (no OpenMP runtime loaded)".
const char* parallel_runtime();

}  // namespace ms
