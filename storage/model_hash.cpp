// Model identity: weight-file hashing with a per-file cache in the database (file_hashes), the
// in-memory fallback, and Database::register_model(const Model&).
#include "storage/model_hash.h"

#include <ATen/ATen.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "core/model/model.h"
#include "storage/database_impl.h"

namespace fs = std::filesystem;

namespace ms {

std::vector<std::string> weight_files(const std::string& source) {
  std::vector<std::string> out;
  std::error_code ec;
  if (source.empty()) return out;
  if (fs::is_regular_file(source, ec)) return {fs::absolute(source).string()};
  if (!fs::is_directory(source, ec)) return out;
  static const char* kExt[] = {".safetensors", ".gguf", ".bin", ".pt", ".pth"};
  for (const auto& e : fs::directory_iterator(source, ec)) {
    if (!e.is_regular_file(ec)) continue;
    std::string ext = e.path().extension().string();
    if (std::find(std::begin(kExt), std::end(kExt), ext) != std::end(kExt))
      out.push_back(fs::absolute(e.path()).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read the weight file to hash it");
  Sha256 h;
  std::vector<char> buf(4 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw InputError(path + ": read error while hashing the weight file");
  return h.hex_digest();
}

std::string tensors_content_hash(const std::vector<std::pair<std::string, at::Tensor>>& named) {
  Sha256 h;
  for (const auto& [name, t] : named) {
    if (!t.defined()) continue;
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    std::string head = name + "\t" + std::string(c10::toString(c.scalar_type())) + "\t";
    for (int64_t s : c.sizes()) head += std::to_string(s) + ",";
    h.update(head + "\n");
    h.update(c.data_ptr(), c.nbytes());
  }
  return "sha256-tensors:" + h.hex_digest();
}

namespace {

// A file's hash through the cache: recomputed when its size or mtime changed.
std::string cached_file_hash(sql::Connection& c, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot stat the weight file");
  int64_t size = st.st_size;
  int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  sql::Stmt& q = c.stmt("SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?");
  q.bind(1, path).bind(2, size).bind(3, mtime_ns);
  std::string hash = q.step() ? q.text(0) : "";
  q.reset();
  if (!hash.empty()) return hash;
  hash = sha256_file(path);
  sql::Stmt& u = c.stmt("INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)");
  u.bind(1, path).bind(2, size).bind(3, mtime_ns).bind(4, hash).run();
  return hash;
}

}  // namespace

Result<int64_t> Database::register_model(const Model& model) {
  Result<ModelInfo> info = guard([&]() {
    ModelInfo m;
    std::error_code ec;
    m.path = model.source().empty() ? "" : fs::absolute(model.source(), ec).string();
    m.architecture = model.config().model_type;
    m.config_json = model.config().to_json();
    m.n_params = model.parameter_count();
    std::vector<std::string> files = weight_files(model.source());
    if (files.empty()) {
      m.content_hash = tensors_content_hash(model.weights().named());
    } else {
      sql::Connection& c = m_impl->conn;
      m.content_hash = combine_file_hashes(files, [&](const std::string& f) { return cached_file_hash(c, f); });
    }
    return m;
  });
  if (!info) return info.error();
  return register_model(*info);
}

}  // namespace ms
