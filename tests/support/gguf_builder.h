// Writes GGUF files for tests: key/values and tensors in, file bytes out, with every field
// under the test's control (malformed entries, offsets) and metadata copied from another file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/io/gguf.h"

namespace ms::test {

// A minimal GGUF writer: key/values and tensors in, file bytes out.
class GgufBuilder {
 public:
  template <class T>
  static void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  static void put_str(std::string& out, const std::string& s) {
    put<uint64_t>(out, s.size());
    out += s;
  }

  void kv_u32(const std::string& key, uint32_t v) {
    begin_kv(key, 4);
    put(m_kv, v);
  }
  void kv_i32(const std::string& key, int32_t v) {
    begin_kv(key, 5);
    put(m_kv, v);
  }
  void kv_f32(const std::string& key, float v) {
    begin_kv(key, 6);
    put(m_kv, v);
  }
  void kv_bool(const std::string& key, bool v) {
    begin_kv(key, 7);
    put<uint8_t>(m_kv, v);
  }
  void kv_str(const std::string& key, const std::string& v) {
    begin_kv(key, 8);
    put_str(m_kv, v);
  }
  void kv_u64(const std::string& key, uint64_t v) {
    begin_kv(key, 10);
    put(m_kv, v);
  }
  void kv_strs(const std::string& key, const std::vector<std::string>& v) {
    begin_kv(key, 9);
    put<uint32_t>(m_kv, 8);
    put<uint64_t>(m_kv, v.size());
    for (const auto& s : v) put_str(m_kv, s);
  }
  void kv_f32s(const std::string& key, const std::vector<float>& v) {
    begin_kv(key, 9);
    put<uint32_t>(m_kv, 6);
    put<uint64_t>(m_kv, v.size());
    for (float f : v) put(m_kv, f);
  }
  void kv_i32s(const std::string& key, const std::vector<int32_t>& v) {
    begin_kv(key, 9);
    put<uint32_t>(m_kv, 5);
    put<uint64_t>(m_kv, v.size());
    for (int32_t i : v) put(m_kv, i);
  }
  // A value as the reader returns it: integers written as I64, floats as F64, arrays typed by
  // their first element (an empty array as U8).
  void kv_value(const std::string& key, const GgufValue& v);
  // Every metadata key/value of a file, in key order.
  void kv_copy(const GgufFile& from);
  // Raw bytes after the key (type and value), for malformed entries.
  void kv_raw(const std::string& key, const std::string& type_and_value) {
    put_str(m_kv, key);
    m_kv += type_and_value;
    ++m_n_kv;
  }
  // ne in ggml order (innermost first). offset < 0: the next aligned offset.
  void tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, std::string data,
              int64_t offset = -1) {
    m_tensors.push_back({name, std::move(ne), type, std::move(data), offset});
  }

  std::string build(uint32_t version = 3, uint64_t alignment = 32) const {
    std::string out = "GGUF";
    put(out, version);
    put<uint64_t>(out, m_tensors.size());
    put<uint64_t>(out, m_n_kv);
    out += m_kv;
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const auto& t : m_tensors) {
      uint64_t off = t.offset >= 0 ? static_cast<uint64_t>(t.offset) : next;
      offsets.push_back(off);
      next = (off + t.data.size() + alignment - 1) / alignment * alignment;
      put_str(out, t.name);
      put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
      for (uint64_t n : t.ne) put(out, n);
      put(out, t.type);
      put(out, off);
    }
    out.append((alignment - out.size() % alignment) % alignment, '\0');
    const size_t data_start = out.size();
    for (size_t i = 0; i < m_tensors.size(); ++i) {
      const std::string& d = m_tensors[i].data;
      if (out.size() < data_start + offsets[i] + d.size()) {
        out.resize(data_start + offsets[i] + d.size(), '\0');
      }
      out.replace(data_start + offsets[i], d.size(), d);
    }
    return out;
  }

 private:
  void begin_kv(const std::string& key, uint32_t type) {
    put_str(m_kv, key);
    put(m_kv, type);
    ++m_n_kv;
  }
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    std::string data;
    int64_t offset;
  };
  std::string m_kv;
  uint64_t m_n_kv = 0;
  std::vector<Tensor> m_tensors;
};


}  // namespace ms::test
