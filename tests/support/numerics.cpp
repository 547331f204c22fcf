// Implementation of the float32 comparisons shared by the tests, and the line that names the
// numerics a test process runs with (printed by the test main).
#include "tests/support/numerics.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace ms::test {
namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// "CPU capability usage: AVX2" from LibTorch's build/config summary.
std::string aten_capability() {
  const std::string cfg = at::show_config();
  const std::string key = "CPU capability usage: ";
  size_t p = cfg.find(key);
  if (p == std::string::npos) return "?";
  p += key.size();
  return cfg.substr(p, cfg.find('\n', p) - p);
}

::testing::AssertionResult verdict(const std::string& what, const Closeness& c, double rtol) {
  const double rel = c.rel();
  std::printf("numeric: %s: max diff %.3e of scale %.3e = %.3e (tolerance %.1e, %.3g%% of it)\n", what.c_str(),
              c.diff, c.scale, rel, rtol, 100.0 * rel / rtol);
  if (rel <= rtol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": max diff " << c.diff << " of scale " << c.scale << " = " << rel
                                       << " relative, above the tolerance " << rtol;
}

}  // namespace

Closeness closeness(const at::Tensor& a_in, const at::Tensor& ref_in, double floor) {
  Closeness c;
  c.scale = std::max(floor, std::numeric_limits<double>::min());
  if (a_in.sizes() != ref_in.sizes()) {
    c.diff = std::numeric_limits<double>::infinity();
    return c;
  }
  at::Tensor a = a_in.detach().to(at::kCPU).to(at::kDouble), ref = ref_in.detach().to(at::kCPU).to(at::kDouble);
  at::Tensor finite = at::isfinite(ref);
  at::Tensor other = finite.logical_not();
  if (!at::equal(at::isfinite(a), finite) || !at::equal(a.masked_select(other), ref.masked_select(other))) {
    c.diff = std::numeric_limits<double>::infinity();
    return c;
  }
  if (ref.numel() == 0 || !finite.any().item<bool>()) return c;
  at::Tensor r = ref.masked_select(finite), o = a.masked_select(finite);
  c.diff = (o - r).abs().max().item<double>();
  c.scale = std::max(c.scale, r.abs().max().item<double>());
  return c;
}

::testing::AssertionResult close_rel(const std::string& what, const at::Tensor& a, const at::Tensor& ref,
                                     double rtol, double floor) {
  return verdict(what, closeness(a, ref, floor), rtol);
}

::testing::AssertionResult close_rel(const std::string& what, double a, double ref, double rtol, double scale) {
  Closeness c;
  c.diff = std::isfinite(a) && std::isfinite(ref) ? std::abs(a - ref) : std::numeric_limits<double>::infinity();
  c.scale = std::max(std::abs(scale), std::numeric_limits<double>::min());
  return verdict(what, c, rtol);
}

std::string numeric_environment() {
  // OpenBLAS is loaded by LibTorch; ask it by symbol so the tests need not link it themselves.
  using CoreFn = char* (*)();
  using ThreadsFn = int (*)();
  auto core = reinterpret_cast<CoreFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  auto blas_threads = reinterpret_cast<ThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  std::ostringstream s;
  s << "numerics: OpenBLAS core " << (core ? core() : "(not OpenBLAS)") << " (OPENBLAS_CORETYPE="
    << env_or("OPENBLAS_CORETYPE", "unset") << "), " << (blas_threads ? blas_threads() : 0)
    << " OpenBLAS threads; LibTorch " << at::get_num_threads() << " intra-op threads (OMP_NUM_THREADS="
    << env_or("OMP_NUM_THREADS", "unset") << "), ATen CPU capability " << aten_capability()
    << " (ATEN_CPU_CAPABILITY=" << env_or("ATEN_CPU_CAPABILITY", "unset") << ")";
  return s.str();
}

}  // namespace ms::test
