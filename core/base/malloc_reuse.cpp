// The process's memory policy (malloc_reuse.h): mallopt so that large blocks come from the heap and
// freed memory stays there (M_MMAP_MAX 0, a trim threshold of 2 GiB; peak RSS is unchanged, RSS
// just does not shrink after the peak), and a CPU allocator for ATen that asks for transparent huge
// pages for large tensors.
#include "core/base/malloc_reuse.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace ms {

void keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  const char* opt_out = std::getenv("MECHSCOPE_MALLOC_DEFAULT");
  if (opt_out && *opt_out == '1') return;
  for (const char* v : {"MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"})
    if (std::getenv(v)) return;  // the user tunes malloc
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(0x7fffffff));
#endif
}

namespace {

bool huge_pages_opted_out() {
  const char* v = std::getenv("MECHSCOPE_HUGE_PAGES");
  return v && *v == '0';
}

std::atomic<bool> g_huge_active{false};
thread_local int t_huge_scopes = 0;  // HugePagesScope objects alive on this thread

#if defined(__linux__)
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kLarge = size_t(4) << 20;  // at least one whole huge page inside, whatever the size
constexpr size_t kAlign = 64;               // ATen's own CPU alignment (c10 gAlignment)

void free_block(void* p) { std::free(p); }

// Every block from posix_memalign and freed with free, so raw_allocate works as with ATen's own
// allocator. Large blocks inside a HugePagesScope: 2 MiB-aligned, their whole huge pages advised
// before the first touch (memory the heap hands out again may already be in small pages: then the
// advice changes nothing).
// allocate is declared const and non-const and copy_data without `override`: LibTorch 1.13's
// Allocator has `allocate(size_t) const` and no copy_data, LibTorch 2.3 and later a non-const
// allocate and a pure copy_data; each version overrides the ones it has.
struct HugePageCpuAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) const {  // NOLINT: see above
    if (n == 0) return {nullptr, nullptr, &free_block, c10::Device(c10::DeviceType::CPU)};
    void* p = nullptr;
    const bool huge = n >= kLarge && t_huge_scopes > 0;
    if (posix_memalign(&p, huge ? kHugePage : kAlign, n) != 0 || !p)
      TORCH_CHECK(false, "mechscope: out of CPU memory allocating ", n, " bytes");
    if (huge) advise_huge_pages(p, n / kHugePage * kHugePage);
    return {p, p, &free_block, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DataPtr allocate(size_t n) { return static_cast<const HugePageCpuAllocator*>(this)->allocate(n); }
  void copy_data(void* dst, const void* src, size_t n) const { std::memcpy(dst, src, n); }
  c10::DeleterFnPtr raw_deleter() const { return &free_block; }
};
#endif

}  // namespace

void huge_pages_for_large_tensors() {
#if defined(__linux__)
  if (huge_pages_opted_out() || g_huge_active.exchange(true)) return;
  static HugePageCpuAllocator allocator;  // lives as long as the process: tensors may outlive main
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
#endif
}

void advise_huge_pages(void* p, size_t n) {
#if defined(__linux__)
  if (p && n && !huge_pages_opted_out()) (void)::madvise(p, n, MADV_HUGEPAGE);
#else
  (void)p, (void)n;
#endif
}

bool huge_pages_for_large_tensors_active() { return g_huge_active.load(); }

HugePagesScope::HugePagesScope() { ++t_huge_scopes; }
HugePagesScope::~HugePagesScope() { --t_huge_scopes; }

}  // namespace ms
