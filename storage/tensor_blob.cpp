// Tensor blobs: dtype names shared with .npy ("float32", "bfloat16", ...), zlib compression,
// and the checks that make a damaged blob an error instead of a wrong tensor.
#include "storage/tensor_blob.h"
#include "core/base/json_input.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/base/result.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tensor blobs are stored little-endian");

namespace ms::blob {
namespace {

struct DtypeName {
  c10::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {at::kFloat, "float32"}, {at::kDouble, "float64"}, {at::kHalf, "float16"},
    {at::kBFloat16, "bfloat16"}, {at::kLong, "int64"}, {at::kInt, "int32"},
    {at::kShort, "int16"}, {at::kChar, "int8"}, {at::kByte, "uint8"}, {at::kBool, "bool"}};

}  // namespace

std::string shape_json(const std::vector<int64_t>& shape) { return nlohmann::json(shape).dump(); }

std::vector<int64_t> parse_shape(const std::string& json, const std::string& where) {
  nlohmann::json j = ms::parse_json_or_discarded(json);
  std::vector<int64_t> shape;
  bool ok = j.is_array();
  if (ok)
    for (const auto& d : j) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) ok = false;
      else shape.push_back(d.get<int64_t>());
    }
  if (!ok) throw InputError(where + ": shape '" + json + "' is not a list of sizes");
  return shape;
}

EncodedTensor encode(const at::Tensor& t, const std::string& name) {
  if (!t.defined()) throw std::invalid_argument("tensor '" + name + "' is undefined");
  EncodedTensor e;
  for (const auto& d : kDtypes)
    if (d.type == t.scalar_type()) e.dtype = d.name;
  if (e.dtype.empty())
    throw std::invalid_argument("tensor '" + name + "': dtype " + std::string(c10::toString(t.scalar_type())) +
                                " cannot be stored; convert it to a float or integer type");
  at::Tensor c = t.detach().to(at::kCPU).contiguous();
  e.shape = c.sizes().vec();
  e.raw_bytes = static_cast<int64_t>(c.nbytes());
  if (e.raw_bytes > kMaxTensorBytes)
    throw std::invalid_argument("tensor '" + name + "' is " + std::to_string(e.raw_bytes) +
                                " bytes; the database holds tensors up to " +
                                std::to_string(kMaxTensorBytes) + " bytes: store a slice, or write .npy");
  const auto* raw = static_cast<const Bytef*>(c.data_ptr());
  uLongf bound = compressBound(static_cast<uLong>(e.raw_bytes));
  std::string z(bound, '\0');
  int rc = compress2(reinterpret_cast<Bytef*>(z.data()), &bound, raw, static_cast<uLong>(e.raw_bytes), 3);
  if (rc == Z_OK && static_cast<int64_t>(bound) < e.raw_bytes) {
    z.resize(bound);
    e.compression = "zlib";
    e.data = std::move(z);
  } else {
    e.compression = "none";
    e.data.assign(reinterpret_cast<const char*>(raw), static_cast<size_t>(e.raw_bytes));
  }
  return e;
}

at::Tensor decode(const EncodedTensor& e, const std::string& where) {
  c10::ScalarType type = at::kFloat;
  bool known = false;
  for (const auto& d : kDtypes)
    if (e.dtype == d.name) {
      type = d.type;
      known = true;
    }
  if (!known) throw InputError(where + ": unknown dtype '" + e.dtype + "'");
  // The size the shape implies, checked against the stored size and the limit before anything is
  // allocated (a damaged row must not make us allocate what its shape claims).
  int64_t expected = static_cast<int64_t>(c10::elementSize(type));
  for (int64_t d : e.shape) {
    if (d < 0 || (d > 0 && expected > kMaxTensorBytes / d)) {
      expected = -1;
      break;
    }
    expected *= d;
  }
  if (expected < 0 || expected != e.raw_bytes || e.raw_bytes > kMaxTensorBytes)
    throw InputError(where + ": " + std::to_string(e.raw_bytes) + " bytes stored for a " + e.dtype +
                     " tensor of shape " + shape_json(e.shape) + " (" +
                     (expected < 0 ? "over the limit of " + std::to_string(kMaxTensorBytes) : std::to_string(expected)) +
                     " bytes expected); the row is damaged");
  at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(type));
  if (e.compression == "none") {
    if (static_cast<int64_t>(e.data.size()) != e.raw_bytes)
      throw InputError(where + ": stored blob has " + std::to_string(e.data.size()) + " bytes, " +
                       std::to_string(e.raw_bytes) + " expected; the row is damaged");
    if (e.raw_bytes) std::memcpy(t.data_ptr(), e.data.data(), static_cast<size_t>(e.raw_bytes));
    return t;
  }
  if (e.compression != "zlib") throw InputError(where + ": unknown compression '" + e.compression + "'");
  uLongf n = static_cast<uLongf>(e.raw_bytes);
  int rc = uncompress(static_cast<Bytef*>(t.data_ptr()), &n, reinterpret_cast<const Bytef*>(e.data.data()),
                      static_cast<uLong>(e.data.size()));
  if (rc != Z_OK || static_cast<int64_t>(n) != e.raw_bytes)
    throw InputError(where + ": the compressed blob does not inflate to " + std::to_string(e.raw_bytes) +
                     " bytes (zlib error " + std::to_string(rc) + "); the row is damaged");
  return t;
}

}  // namespace ms::blob
