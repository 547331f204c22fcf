// Shared by the fuzz targets (fuzz/targets/*.cpp): a target is one function of the input bytes,
// built either as a libFuzzer binary (MECHSCOPE_LIBFUZZER) or into the regression runner
// (tests/unit/test_fuzz_regressions.cpp), which replays tests/fixtures/fuzz/<target>/ through it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/result.h"

namespace ms::fuzz {

using TargetFn = void (*)(const uint8_t* data, size_t size);

// Every target of this binary, in registration order.
std::vector<std::pair<std::string, TargetFn>>& targets();
struct Registration {
  Registration(const char* name, TargetFn fn) { targets().emplace_back(name, fn); }
};

// A folder private to this process (under /dev/shm when it exists: no disk I/O per input),
// removed at exit.
const std::string& scratch_dir();
// Writes bytes to scratch_dir()/name and returns the path.
std::string write_file(const std::string& name, std::string_view bytes);

// Bad input must come back as kBadInput or kUsage: anything else (kInternal: an unexpected
// exception, "out of memory") is a bug, reported by aborting so that libFuzzer keeps the input.
void expect_clean(const Error& e, const char* what);
template <class T>
bool accept(const Result<T>& r, const char* what) {
  if (!r) expect_clean(r.error(), what);
  return r.ok();
}
// Runs f; an InputError is fine (bad input), any other exception aborts.
template <class F>
void expect_input_errors_only(F&& f, const char* what) {
  Status s = guard(f);
  if (!s) expect_clean(s.error(), what);
}

// The input split at NUL bytes into at most n parts (the last part keeps any further NULs).
std::vector<std::string_view> split_parts(const uint8_t* data, size_t size, size_t n);

// Reference files under the checkout (resources/, tests/fixtures/) and ../shared/reference.
std::string source_path(const std::string& rel);
std::string reference_path(const std::string& rel);

}  // namespace ms::fuzz

#ifdef MECHSCOPE_LIBFUZZER
#define MECHSCOPE_FUZZ_TARGET(name)                                                    \
  static void fuzz_##name(const uint8_t* data, size_t size);                           \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {            \
    fuzz_##name(data, size);                                                           \
    return 0;                                                                          \
  }                                                                                    \
  static void fuzz_##name(const uint8_t* data, size_t size)
#else
#define MECHSCOPE_FUZZ_TARGET(name)                                                    \
  static void fuzz_##name(const uint8_t* data, size_t size);                           \
  static const ms::fuzz::Registration fuzz_registration_##name(#name, fuzz_##name);    \
  static void fuzz_##name(const uint8_t* data, size_t size)
#endif
