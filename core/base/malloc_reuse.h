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
// each page costs a TLB walk. Measured on a Zen 4 with a variant of bench_retrieval that put the
// same weights on either kind of page in alternate rounds of one run: a step at KV length 512 6-8%
// faster at 1 and 2 threads (2-5% at 16,384, the cache then on small pages).
// Only there: with every large tensor advised, a 16K-token sink analysis peaked 0.67 GiB higher
// (freed huge pages reused by smaller blocks) and ran no faster. Weights mapped from a file are
// advised in the mapping itself (core/io/tensor_file.cpp).
#pragma once

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

// Whether huge_pages_for_large_tensors installed the allocator in this process.
bool huge_pages_for_large_tensors_active();

}  // namespace ms
