// The process's memory policy, set once at start (mechscope's main, the benches).
//
// keep_freed_memory_for_reuse: freed heap memory is kept for reuse instead of large blocks being
// handed back to the kernel. glibc maps every block above 32 MiB afresh and unmaps it on free, so a
// loop that makes a new [2048, 16384] float tensor per batch pays its page faults each time
// (measured: about 300 ms per 50 MB on the development VM; feature dashboards 30.0 s -> 4.8 s for
// 32,768 tokens at the same peak RSS).
//
// huge_pages_for_large_tensors: inside a HugePagesScope (loading a model's weights, making a KV
// cache), ATen's CPU tensors of 4 MiB and more start on a 2 MiB boundary and are advised for
// transparent huge pages (madvise MADV_HUGEPAGE, before anything touches them), which the kernel
// lends only on request under THP "madvise" (this project's machines). A decode step streams every
// weight and the cache: on 4 KiB pages the hardware prefetchers stop at every page boundary and
// each page costs a TLB walk. Measured on a Zen 4 in alternating runs of bench_retrieval with and
// without MECHSCOPE_HUGE_PAGES=0: a step 2-4% faster at 2 threads (KV 512 and 16,384), 4-30% at 1
// thread (noisier). Only there: with every large tensor advised (commit 8059848), a 16K-token sink
// analysis (bench_sinks --long 16384 --short 256) peaked 0.67 GiB higher, freed huge pages reused
// by smaller blocks, and ran no faster. Weights mapped from a file are advised in the mapping
// itself (core/io/tensor_file.cpp).
#pragma once

#include <cstddef>

namespace ms {

// No effect off glibc, or when the environment sets MECHSCOPE_MALLOC_DEFAULT=1 (glibc's own policy)
// or any MALLOC_*_ tuning.
void keep_freed_memory_for_reuse();

// Installs the allocator (c10::SetCPUAllocator) once; MECHSCOPE_HUGE_PAGES=0 keeps ATen's own.
// Off Linux, no effect. Tensors already allocated keep their memory and their deleter. Outside a
// HugePagesScope the allocator is ATen's: posix_memalign to 64 bytes, free.
void huge_pages_for_large_tensors();

// While one lives on a thread, that thread's large CPU tensors are asked for huge pages (when the
// allocator is installed). Nests.
class HugePagesScope {
 public:
  HugePagesScope();
  ~HugePagesScope();
  HugePagesScope(const HugePagesScope&) = delete;
  HugePagesScope& operator=(const HugePagesScope&) = delete;
};

// madvise(MADV_HUGEPAGE) over [p, p + n) (Linux; errors ignored: it is advice), unless the
// environment sets MECHSCOPE_HUGE_PAGES=0. The allocator's large blocks and the file mappings of
// weights (core/io/tensor_file.cpp) both go through it.
void advise_huge_pages(void* p, size_t n);

// Whether huge_pages_for_large_tensors installed the allocator in this process.
bool huge_pages_for_large_tensors_active();

}  // namespace ms
