// GgufBuilder's metadata copy: values as GgufFile returns them, written back with their type.
#include "tests/support/gguf_builder.h"

namespace ms::test {
namespace {

// The GGUF value type of a value as the reader returns it (integers I64, floats F64).
uint32_t value_type(const GgufValue& v) {
  if (std::holds_alternative<int64_t>(v.v)) return 11;
  if (std::holds_alternative<double>(v.v)) return 12;
  if (std::holds_alternative<bool>(v.v)) return 7;
  if (std::holds_alternative<std::string>(v.v)) return 8;
  return 9;
}

void put_value(std::string& out, const GgufValue& v) {
  if (const int64_t* i = std::get_if<int64_t>(&v.v)) {
    GgufBuilder::put(out, *i);
  } else if (const double* d = std::get_if<double>(&v.v)) {
    GgufBuilder::put(out, *d);
  } else if (const bool* b = std::get_if<bool>(&v.v)) {
    GgufBuilder::put<uint8_t>(out, *b ? 1 : 0);
  } else if (const std::string* s = std::get_if<std::string>(&v.v)) {
    GgufBuilder::put_str(out, *s);
  } else {
    const GgufArray& arr = std::get<GgufArray>(v.v);
    GgufBuilder::put<uint32_t>(out, arr.empty() ? 0 : value_type(arr[0]));
    GgufBuilder::put<uint64_t>(out, arr.size());
    for (const GgufValue& e : arr) put_value(out, e);
  }
}

}  // namespace

void GgufBuilder::kv_value(const std::string& key, const GgufValue& v) {
  std::string raw;
  put<uint32_t>(raw, value_type(v));
  put_value(raw, v);
  kv_raw(key, raw);
}

void GgufBuilder::kv_copy(const GgufFile& from) {
  for (const auto& [key, value] : from.metadata()) kv_value(key, value);
}

}  // namespace ms::test
