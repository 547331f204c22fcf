// The process's memory policy (core/base/malloc_reuse.h): with huge_pages_for_large_tensors, ATen's
// CPU tensors of 4 MiB and more made inside a HugePagesScope start on a 2 MiB boundary inside a
// mapping the kernel may back with transparent huge pages; smaller ones keep ATen's 64-byte
// alignment; raw allocation works; tensors made before the switch are freed by their own deleter;
// a model's KV cache is made inside the scope.
#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "core/base/malloc_reuse.h"
#include "core/model/model.h"
#include "tests/support/tiny_models.h"

namespace {

std::string thp_mode() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(f, line);
  return line;
}

// The THPeligible line of the /proc/self/smaps entry whose range holds address a ("" if none).
std::string thp_eligible(uintptr_t a) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(f, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
      inside = lo <= a && a < hi;
      continue;
    }
    if (inside && line.rfind("THPeligible:", 0) == 0) return line;
  }
  return "";
}

TEST(MemoryPolicy, LargeTensorsOnHugePageBoundariesAdvised) {
  at::Tensor before = at::ones({3 << 20});  // ATen's own allocator: freed by its own deleter below
  ms::huge_pages_for_large_tensors();
  ASSERT_TRUE(ms::huge_pages_for_large_tensors_active());
  ms::huge_pages_for_large_tensors();  // a second call changes nothing
  at::Tensor big;
  {
    ms::HugePagesScope outer;
    ms::HugePagesScope inner;  // nests
    big = at::arange(0, 6 << 20, at::kFloat);  // 24 MiB
  }
  const uintptr_t p = reinterpret_cast<uintptr_t>(big.data_ptr());
  EXPECT_EQ(p % (uintptr_t(2) << 20), 0u);
  // Every element written and read back (the sum of 0 .. n-1 in double, exact).
  const double n = static_cast<double>(big.numel());
  EXPECT_EQ(big.sum(at::kDouble).item<double>(), n * (n - 1) / 2);
  at::Tensor small = at::ones({100});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data_ptr()) % 64, 0u);
  at::Tensor empty = at::empty({0});
  EXPECT_EQ(empty.numel(), 0);
  c10::Allocator* a = c10::GetCPUAllocator();
  void* raw = a->raw_allocate(5 << 20);
  ASSERT_NE(raw, nullptr);
  static_cast<char*>(raw)[(5 << 20) - 1] = 1;
  a->raw_deallocate(raw);
  before.reset();
  // A KV cache of 2 x 4 MiB a layer: on huge-page boundaries.
  std::unique_ptr<ms::Model> m = ms::test::tiny_model("llama");
  ms::KVCache cache = m->make_cache(1, (int64_t(1) << 20) / m->config().d_head / m->config().n_kv_heads);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(cache.k[0].data_ptr()) % (uintptr_t(2) << 20), 0u);
  // The kernel's own view of the big tensor's mapping: eligible for huge pages, which under the
  // "madvise" mode only the advice makes it (kernels from 5.x list THPeligible per mapping).
  const std::string mode = thp_mode(), line = thp_eligible(p + (size_t(1) << 20));
  if (mode.find("[never]") != std::string::npos || line.empty()) GTEST_SKIP() << "THP off or not reported: " << mode;
  EXPECT_NE(line.find('1'), std::string::npos) << line << " (THP " << mode << ")";
}

}  // namespace
