// keep_freed_memory_for_reuse: mallopt so that large blocks come from the heap and freed memory
// stays there (M_MMAP_MAX 0, a trim threshold of 2 GiB); peak RSS is unchanged, RSS just does not
// shrink after the peak.
#include "core/base/malloc_reuse.h"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
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

}  // namespace ms
