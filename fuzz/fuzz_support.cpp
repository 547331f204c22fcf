// Scratch files, input splitting and the "only clean errors" check shared by the fuzz targets.
#include "fuzz/fuzz_support.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "fuzz_paths.h"  // generated: MECHSCOPE_FUZZ_SOURCE_DIR, MECHSCOPE_FUZZ_REFERENCE_DIR

namespace ms::fuzz {
namespace fs = std::filesystem;

std::vector<std::pair<std::string, TargetFn>>& targets() {
  static std::vector<std::pair<std::string, TargetFn>> all;
  return all;
}

namespace {
std::string make_scratch() {
  std::error_code ec;
  const std::string base = fs::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0
                               ? "/dev/shm" : fs::temp_directory_path().string();
  std::string tmpl = base + "/mechscope-fuzz-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    std::perror("mechscope fuzz: mkdtemp");
    std::abort();
  }
  return tmpl;
}
struct Scratch {
  std::string dir = make_scratch();
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};
}  // namespace

const std::string& scratch_dir() {
  static Scratch s;
  return s.dir;
}

std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "mechscope fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

void expect_clean(const Error& e, const char* what) {
  if (e.code == ErrorCode::kBadInput || e.code == ErrorCode::kUsage) return;
  std::fprintf(stderr, "mechscope fuzz: %s gave an internal error (code %d) on bad input: %s\n", what,
               static_cast<int>(e.code), e.message.c_str());
  std::abort();
}

std::vector<std::string_view> split_parts(const uint8_t* data, size_t size, size_t n) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> out;
  while (out.size() + 1 < n) {
    const size_t nul = all.find('\0');
    if (nul == std::string_view::npos) break;
    out.push_back(all.substr(0, nul));
    all.remove_prefix(nul + 1);
  }
  out.push_back(all);
  while (out.size() < n) out.emplace_back();
  return out;
}

std::string source_path(const std::string& rel) { return std::string(MECHSCOPE_FUZZ_SOURCE_DIR) + "/" + rel; }
std::string reference_path(const std::string& rel) {
  return std::string(MECHSCOPE_FUZZ_REFERENCE_DIR) + "/" + rel;
}

}  // namespace ms::fuzz
