// SHA-256 (FIPS 180-4), streaming: the content hash that tells one checkpoint from another.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ms {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();  // finishes; call once
  std::string hex_digest();          // 64 lowercase hex digits

 private:
  void block(const uint8_t* p);
  uint32_t m_h[8];
  uint8_t m_buf[64];
  size_t m_buf_len = 0;
  uint64_t m_total = 0;
};

std::string sha256_hex(const std::string& bytes);

}  // namespace ms
