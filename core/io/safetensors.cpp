// Safetensors files: validating reader (every header field checked against the file), sharded
// checkpoints through model.safetensors.index.json, and a writer (temp file + rename).
#include "core/io/safetensors.h"

#include "core/base/atomic_file.h"
#include "core/base/json_input.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <limits>

namespace ms {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

struct DTypeEntry {
  const char* name;
  DType dtype;
};
constexpr DTypeEntry kDTypes[] = {
    {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16}, {"F64", DType::kF64},
    {"I64", DType::kI64}, {"I32", DType::kI32}, {"I16", DType::kI16},   {"I8", DType::kI8},
    {"U8", DType::kU8},   {"BOOL", DType::kBool},
};

bool parse_dtype(const std::string& s, DType* out) {
  for (const auto& e : kDTypes) {
    if (s == e.name) {
      *out = e.dtype;
      return true;
    }
  }
  return false;
}

// A non-negative JSON integer (no floats, no negatives) as int64.
bool json_count(const json& j, int64_t* out) {
  if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v < 0) return false;
    *out = v;
    return true;
  }
  return false;
}

uint64_t read_le_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.error();
  std::shared_ptr<MappedFile> file = mapped.value();
  return guard([&]() -> std::unique_ptr<SafetensorsFile> {
    const std::string& p = path;
    size_t size = file->size();
    if (size < 8) {
      fail_input(p + ": file is only " + std::to_string(size) +
                 " bytes; a safetensors file starts with an 8-byte header length (truncated?)");
    }
    uint64_t header_len = read_le_u64(file->data());
    if (header_len > kMaxHeaderBytes) {
      fail_input(p + ": header length " + std::to_string(header_len) +
                 " is absurd (over 100 MB); this is not a safetensors file or it is corrupt");
    }
    if (header_len > size - 8) {
      fail_input(p + ": header length " + std::to_string(header_len) +
                 " runs past the end of the file (" + std::to_string(size) +
                 " bytes); the file is truncated or not safetensors");
    }
    const char* header_begin = reinterpret_cast<const char*>(file->data() + 8);
    // A tensor named twice would silently keep one of the two: refused.
    JsonParseOptions opts;
    opts.reject_duplicate_keys = true;
    const json header = parse_json_input(std::string_view(header_begin, header_len), p + ": header", opts);
    if (!header.is_object()) fail_input(p + ": header JSON is not an object");

    const uint8_t* data = file->data() + 8 + header_len;
    const int64_t data_size = static_cast<int64_t>(size - 8 - header_len);
    auto out = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
    out->m_path = p;
    struct Span {
      int64_t begin, end;
      std::string name;
    };
    std::vector<Span> spans;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) fail_input(p + ": __metadata__ is not a JSON object");
        for (const auto& [key, value] : entry.items()) {
          if (!value.is_string()) {
            fail_input(p + ": __metadata__ value of '" + key + "' is not a string");
          }
          out->m_metadata[key] = value.get<std::string>();
        }
        continue;
      }
      const std::string where = p + ": tensor '" + name + "'";
      if (!entry.is_object()) fail_input(where + " is not a JSON object");
      for (const char* field : {"dtype", "shape", "data_offsets"}) {
        if (!entry.contains(field)) fail_input(where + " has no '" + field + "' field");
      }
      const json& jdtype = entry["dtype"];
      if (!jdtype.is_string()) fail_input(where + " has a dtype that is not a string");
      TensorView view;
      view.name = name;
      view.file = file;
      if (!parse_dtype(jdtype.get<std::string>(), &view.dtype)) {
        fail_input(where + " has unknown dtype '" + jdtype.get<std::string>() +
                   "' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");
      }
      const json& jshape = entry["shape"];
      if (!jshape.is_array()) fail_input(where + " has a shape that is not an array");
      int64_t numel = 1;
      bool overflow = false;
      for (const json& d : jshape) {
        int64_t dim = 0;
        if (!json_count(d, &dim)) {
          fail_input(where + " has shape " + json_brief(jshape) +
                     " with a negative or non-integer dimension");
        }
        view.shape.push_back(dim);
        if (dim != 0 && numel > std::numeric_limits<int64_t>::max() / dim) overflow = true;
        numel *= dim;
      }
      const json& joff = entry["data_offsets"];
      int64_t begin = 0, end = 0;
      if (!joff.is_array() || joff.size() != 2 || !json_count(joff[0], &begin) ||
          !json_count(joff[1], &end)) {
        fail_input(where + " has data_offsets " + json_brief(joff) +
                   "; expected [begin, end] with non-negative integers");
      }
      const std::string offsets = "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
      if (end < begin) fail_input(where + " has data_offsets " + offsets + " with end < begin");
      if (end > data_size) {
        fail_input(where + " has data_offsets " + offsets +
                   " beyond the end of the data section (" + std::to_string(data_size) +
                   " bytes); the file is truncated or corrupt");
      }
      int64_t need = overflow ? -1 : dtype_nbytes(view.dtype, numel);
      if (need != end - begin) {
        fail_input(where + " has data_offsets " + offsets + " but shape " +
                   shape_str(view.shape) + " x " + dtype_name(view.dtype) + " needs " +
                   (need < 0 ? std::string("more than 2^63") : std::to_string(need)) + " bytes");
      }
      view.data = data + begin;
      view.nbytes = static_cast<size_t>(end - begin);
      spans.push_back({begin, end, name});
      out->m_tensors.emplace(name, std::move(view));
    }
    // Holes between tensors are tolerated; overlaps are not (empty tensors overlap nothing).
    std::sort(spans.begin(), spans.end(),
              [](const Span& a, const Span& b) { return a.begin < b.begin; });
    const Span* prev = nullptr;
    for (const Span& s : spans) {
      if (s.end == s.begin) continue;
      if (prev && s.begin < prev->end) {
        fail_input(p + ": tensor '" + s.name + "' (bytes " + std::to_string(s.begin) + ".." +
                   std::to_string(s.end) + ") overlaps tensor '" + prev->name + "' (bytes " +
                   std::to_string(prev->begin) + ".." + std::to_string(prev->end) + ")");
      }
      if (!prev || s.end > prev->end) prev = &s;
    }
    return out;
  });
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = m_tensors.find(name);
  return it == m_tensors.end() ? nullptr : &it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(m_tensors.size());
  for (const auto& kv : m_tensors) out.push_back(kv.first);
  return out;
}

std::string SafetensorsFile::describe() const { return m_path; }

Result<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::open_dir(
    const std::string& dir) {
  const fs::path root(dir);
  const fs::path index_path = root / "model.safetensors.index.json";
  const fs::path single_path = root / "model.safetensors";
  std::error_code ec;
  auto out = std::unique_ptr<SafetensorsCheckpoint>(new SafetensorsCheckpoint());
  if (!fs::exists(index_path, ec)) {
    if (!fs::exists(single_path, ec)) {
      return Error{ErrorCode::kBadInput,
                   "no safetensors weights were found in " + dir +
                       " (expected model.safetensors or model.safetensors.index.json)"};
    }
    auto file = SafetensorsFile::open(single_path.string());
    if (!file) return file.error();
    out->m_describe = single_path.string();
    for (const auto& name : file.value()->names()) out->m_index[name] = file.value()->find(name);
    out->m_files.push_back(std::move(file.value()));
    return out;
  }
  Status status = guard([&] {
    const std::string ip = index_path.string();
    json index;
    {
      std::ifstream in(index_path, std::ios::binary);
      if (!in) fail_input(ip + ": cannot read: " + std::strerror(errno));
      std::ostringstream text;
      text << in.rdbuf();
      JsonParseOptions opts;
      opts.reject_duplicate_keys = true;
      index = parse_json_input(text.str(), ip, opts);
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      fail_input(ip + ": has no \"weight_map\" object");
    }
    std::map<std::string, SafetensorsFile*> shards;
    for (const auto& [tensor, shard_json] : index["weight_map"].items()) {
      if (!shard_json.is_string()) {
        fail_input(ip + ": weight_map entry of '" + tensor + "' is not a string");
      }
      const std::string shard = shard_json.get<std::string>();
      auto it = shards.find(shard);
      if (it == shards.end()) {
        const fs::path shard_path = root / shard;
        if (shard.empty() || fs::path(shard).is_absolute() || !fs::exists(shard_path, ec)) {
          fail_input(ip + ": maps tensor '" + tensor + "' to shard '" + shard +
                     "', which does not exist in " + dir);
        }
        auto file = SafetensorsFile::open(shard_path.string());
        if (!file) throw InputError(file.error().message, file.error().code);
        out->m_files.push_back(std::move(file.value()));
        it = shards.emplace(shard, out->m_files.back().get()).first;
      }
      const TensorView* view = it->second->find(tensor);
      if (!view) {
        fail_input(ip + ": maps tensor '" + tensor + "' to shard '" + shard +
                   "', but that shard does not contain it");
      }
      out->m_index[tensor] = view;
    }
    out->m_describe = ip + " (" + std::to_string(shards.size()) + " shards)";
  });
  if (!status) return status.error();
  return out;
}

const TensorView* SafetensorsCheckpoint::find(const std::string& name) const {
  auto it = m_index.find(name);
  return it == m_index.end() ? nullptr : it->second;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(m_index.size());
  for (const auto& kv : m_index) out.push_back(kv.first);
  return out;
}

std::string SafetensorsCheckpoint::describe() const { return m_describe; }

Status write_safetensors(const std::string& path,
                         const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  return guard([&] {
    json header = json::object();
    std::vector<at::Tensor> data;
    int64_t offset = 0;
    for (const auto& [name, tensor] : tensors) {
      if (name == "__metadata__" || header.contains(name)) {
        fail_usage(path + ": tensor name '" + name + "' is reserved or given twice");
      }
      const char* dtype = nullptr;
      switch (tensor.scalar_type()) {
        case at::kFloat: dtype = "F32"; break;
        case at::kHalf: dtype = "F16"; break;
        case at::kBFloat16: dtype = "BF16"; break;
        case at::kDouble: dtype = "F64"; break;
        case at::kLong: dtype = "I64"; break;
        case at::kInt: dtype = "I32"; break;
        case at::kShort: dtype = "I16"; break;
        case at::kChar: dtype = "I8"; break;
        case at::kByte: dtype = "U8"; break;
        case at::kBool: dtype = "BOOL"; break;
        default:
          fail_usage(path + ": tensor '" + name + "' has dtype " +
                     c10::toString(tensor.scalar_type()) + ", which safetensors cannot hold here");
      }
      at::Tensor t = tensor.to(at::kCPU).contiguous();
      const int64_t nbytes = static_cast<int64_t>(t.nbytes());
      header[name] = {{"dtype", dtype},
                      {"shape", t.sizes().vec()},
                      {"data_offsets", {offset, offset + nbytes}}};
      offset += nbytes;
      data.push_back(std::move(t));
    }
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');

    uint8_t len[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
    std::vector<std::pair<const void*, size_t>> pieces{{len, 8}, {text.data(), text.size()}};
    for (const at::Tensor& t : data) pieces.emplace_back(t.data_ptr(), t.nbytes());
    write_file_atomic(path, pieces);
  });
}

}  // namespace ms
