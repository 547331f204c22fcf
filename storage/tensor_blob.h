// Internal to storage/: tensors to and from database blobs (numpy dtype name, shape, raw
// little-endian bytes compressed with zlib when that saves space).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ms::blob {

struct EncodedTensor {
  std::string dtype;          // numpy name
  std::vector<int64_t> shape;
  std::string compression;    // "zlib" or "none"
  int64_t raw_bytes = 0;
  std::string data;
};

// Largest tensor the database takes (SQLite's default blob limit is 1e9 bytes).
constexpr int64_t kMaxTensorBytes = 900'000'000;

// Throws std::invalid_argument for dtypes without a numpy name (complex, quantized) or tensors
// over kMaxTensorBytes; `name` is used in messages.
EncodedTensor encode(const at::Tensor& t, const std::string& name);
// Throws InputError naming `where` when the blob does not match its dtype and shape.
at::Tensor decode(const EncodedTensor& e, const std::string& where);

std::string shape_json(const std::vector<int64_t>& shape);
std::vector<int64_t> parse_shape(const std::string& json, const std::string& where);

}  // namespace ms::blob
