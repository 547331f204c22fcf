// Atomic output files: mkstemp beside the target, write, fsync, rename.
#include "core/base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/base/result.h"

namespace fs = std::filesystem;

namespace ms {

void check_can_write(const std::string& path, bool force) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail_usage(path + ": is a folder; give a file path to --out");
  if (fs::exists(path, ec) && !force) fail_usage(path + ": exists (use --force to replace it)");
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, {{bytes.data(), bytes.size()}});
}

void write_file_atomic(const std::string& path, const std::vector<std::pair<const void*, size_t>>& pieces) {
  fs::path target(path);
  fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail_input(dir.string() + ": cannot create the output folder: " + ec.message());
  std::string pattern = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) fail_input(path + ": cannot create a temporary file beside it: " + std::strerror(errno));
  std::string tmp(name.data());
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail_input(path + ": " + what + ": " + std::strerror(err));
  };
  for (const auto& [data, size] : pieces) {
    const char* bytes = static_cast<const char*>(data);
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::write(fd, bytes + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("write failed (disk full?)");
      done += static_cast<size_t>(n);
    }
  }
  ::fchmod(fd, 0644);
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail_input(path + ": close failed: " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail_input(path + ": cannot rename the finished file into place: " + std::strerror(err));
  }
}

}  // namespace ms
