// The kernel-set rule: core/base/kernel_set.h.
#include "core/base/kernel_set.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace ms {
namespace {

KernelSet cpu_widest() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2 && __builtin_cpu_supports("avx512f")) return KernelSet::kAvx512;
  if (avx2) return KernelSet::kAvx2;
#endif
  return KernelSet::kPortable;
}

KernelSet named(const std::string& s, KernelSet otherwise) {
  if (s == "portable") return KernelSet::kPortable;
  if (s == "avx2") return KernelSet::kAvx2;
  return otherwise;
}

}  // namespace

KernelSet kernel_set(const char* request) {
  static const KernelSet allowed = [] {
    const char* e = std::getenv("MECHSCOPE_ATTENTION_KERNELS");
    return std::min(cpu_widest(), named(e ? e : "", KernelSet::kAvx512));
  }();
  return std::min(allowed, named(request ? request : "", KernelSet::kAvx512));
}

const char* kernel_set_name(KernelSet s) {
  switch (s) {
    case KernelSet::kAvx512: return "avx512";
    case KernelSet::kAvx2: return "avx2";
    case KernelSet::kPortable: break;
  }
  return "portable";
}

}  // namespace ms
