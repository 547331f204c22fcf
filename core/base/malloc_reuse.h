// Keeps freed heap memory for reuse instead of handing large blocks back to the kernel. glibc maps
// every block above 32 MiB afresh and unmaps it on free, so a loop that makes a new [2048, 16384]
// float tensor per batch pays its page faults each time (measured: about 300 ms per 50 MB on the
// development VM; feature dashboards 30.0 s -> 4.8 s for 32,768 tokens at the same peak RSS).
#pragma once

namespace ms {

// Called once at process start (mechscope's main, the benches). No effect off glibc, or when the
// environment sets MECHSCOPE_MALLOC_DEFAULT=1 (glibc's own policy) or any MALLOC_*_ tuning.
void keep_freed_memory_for_reuse();

}  // namespace ms
