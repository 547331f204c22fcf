// Implementation of the shared test helpers.
#include "tests/support/test_support.h"

#include "test_paths.h"  // generated: MECHSCOPE_SOURCE_DIR, _REFERENCE_DIR, _FIXTURES_DIR, _BINARY

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace ms::test {
namespace {

std::vector<std::string>& temp_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

void remove_temp_dirs() {
  for (const auto& d : temp_dirs()) {
    std::error_code ec;
    fs::remove_all(d, ec);
  }
}

}  // namespace

std::string reference_dir() {
  const char* env = std::getenv("MECHSCOPE_REFERENCE_DIR");
  std::string dir = env && *env ? env : MECHSCOPE_REFERENCE_DIR;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "";
  return fs::canonical(dir, ec).string();
}

std::string source_dir() { return MECHSCOPE_SOURCE_DIR; }
std::string fixtures_dir() { return MECHSCOPE_FIXTURES_DIR; }
std::string mechscope_binary() { return MECHSCOPE_BINARY; }

std::string temp_dir(const std::string& tag) {
  static std::once_flag once;
  std::call_once(once, [] {
    temp_dirs();  // constructed before atexit registration, so destroyed after the cleanup runs
    std::atexit(remove_temp_dirs);
  });
  std::string pattern = (fs::temp_directory_path() / ("mechscope-" + tag + "-XXXXXX")).string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  temp_dirs().emplace_back(buf.data());
  return temp_dirs().back();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

ProcessResult run_mechscope(const std::vector<std::string>& args) {
  std::string dir = temp_dir("run");
  std::string out_path = dir + "/out", err_path = dir + "/err";
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::dup2(in, 0);
    std::vector<std::string> argv_s;
    argv_s.push_back(mechscope_binary());
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ProcessResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

}  // namespace ms::test
