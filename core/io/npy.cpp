// NumPy .npy writer and reader (format 1.0, reading 1.0 and 2.0). The header is the Python dict
// literal numpy writes: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
#include "core/io/npy.h"

#include "core/base/atomic_file.h"

#include <ATen/ATen.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

#include "core/io/tensor_file.h"

namespace ms {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kAlign = 64;
constexpr size_t kGrowthDigits = 21;  // numpy leaves room for the first axis to grow in place

struct Descr {
  const char* code;  // without the byte-order character
  at::ScalarType type;
};
constexpr Descr kDescrs[] = {
    {"f4", at::kFloat}, {"f8", at::kDouble}, {"f2", at::kHalf}, {"i8", at::kLong},
    {"i4", at::kInt},   {"i2", at::kShort},  {"i1", at::kChar}, {"u1", at::kByte},
    {"b1", at::kBool},
};

std::string descr_for(at::ScalarType t) {
  for (const auto& d : kDescrs) {
    if (d.type == t) return std::string(d.code[1] == '1' ? "|" : "<") + d.code;
  }
  fail_usage(std::string("cannot write a tensor of dtype ") + c10::toString(t) + " as .npy");
}

std::string shape_tuple(const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return "(" + std::to_string(shape[0]) + ",)";
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

// A tiny parser for the header's Python literal: a dict of str keys to str, bool or int tuple.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::string& text) : m_path(path), m_text(text) {}

  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;

  void parse() {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      std::string key = parse_string();
      expect(':');
      if (key == "descr") {
        descr = parse_string();
        seen_descr = true;
      } else if (key == "fortran_order") {
        fortran_order = parse_bool();
        seen_order = true;
      } else if (key == "shape") {
        shape = parse_tuple();
        seen_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() != ',') break;
      ++m_pos;
    }
    expect('}');
    if (!seen_descr || !seen_order || !seen_shape) {
      fail("needs the keys 'descr', 'fortran_order' and 'shape'");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    fail_input(m_path + ": malformed .npy header (" + what + "): " + m_text);
  }
  void skip_space() {
    while (m_pos < m_text.size() && std::isspace(static_cast<unsigned char>(m_text[m_pos]))) {
      ++m_pos;
    }
  }
  char peek() { return m_pos < m_text.size() ? m_text[m_pos] : '\0'; }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++m_pos;
  }
  std::string parse_string() {
    skip_space();
    char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a string");
    size_t end = m_text.find(quote, m_pos + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string s = m_text.substr(m_pos + 1, end - m_pos - 1);
    m_pos = end + 1;
    return s;
  }
  bool parse_bool() {
    skip_space();
    for (const char* word : {"True", "False"}) {
      size_t n = std::strlen(word);
      if (m_text.compare(m_pos, n, word) == 0) {
        m_pos += n;
        return word[0] == 'T';
      }
    }
    fail("expected True or False");
  }
  std::vector<int64_t> parse_tuple() {
    std::vector<int64_t> out;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a dimension");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("dimension too large");
        v = v * 10 + (m_text[m_pos++] - '0');
      }
      out.push_back(v);
      skip_space();
      if (peek() == ',') {
        ++m_pos;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
    ++m_pos;
    return out;
  }

  const std::string& m_path;
  const std::string& m_text;
  size_t m_pos = 0;
};

}  // namespace

Status write_npy(const std::string& path, const at::Tensor& tensor) {
  return guard([&] {
    at::Tensor t = tensor.to(at::kCPU);
    if (t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
    t = t.contiguous();
    std::string header = "{'descr': '" + descr_for(t.scalar_type()) +
                         "', 'fortran_order': False, 'shape': " + shape_tuple(t.sizes().vec()) +
                         ", }";
    if (t.dim() > 0) {
      size_t digits = std::to_string(t.size(0)).size();
      if (digits < kGrowthDigits) header.append(kGrowthDigits - digits, ' ');
    }
    // Preamble: magic, version 1.0, u16 header length; total a multiple of 64 with the newline.
    size_t total = kMagicLen + 2 + 2 + header.size() + 1;
    header.append((kAlign - total % kAlign) % kAlign, ' ');
    header += '\n';
    if (header.size() > 0xFFFF) fail_usage(path + ": .npy header too long");

    const char preamble[4] = {1, 0, static_cast<char>(header.size() & 0xFF),
                              static_cast<char>(header.size() >> 8)};
    write_file_atomic(path, {{kMagic, kMagicLen},
                             {preamble, 4},
                             {header.data(), header.size()},
                             {t.data_ptr(), t.nbytes()}});
  });
}

Result<at::Tensor> read_npy(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.error();
  std::shared_ptr<MappedFile> file = mapped.value();
  return parse_npy(file->data(), file->size(), path);
}

Result<at::Tensor> parse_npy(const uint8_t* d, size_t size, const std::string& path) {
  return guard([&]() -> at::Tensor {
    if (size < kMagicLen + 4 || std::memcmp(d, kMagic, kMagicLen) != 0) {
      fail_input(path + ": not a .npy file (no \\x93NUMPY magic)");
    }
    const int major = d[6], minor = d[7];
    size_t header_len = 0, header_start = 0;
    if (major == 1) {
      header_len = d[8] | (static_cast<size_t>(d[9]) << 8);
      header_start = 10;
    } else if (major == 2) {
      if (size < 12) fail_input(path + ": truncated .npy preamble");
      header_len = d[8] | (static_cast<size_t>(d[9]) << 8) | (static_cast<size_t>(d[10]) << 16) |
                   (static_cast<size_t>(d[11]) << 24);
      header_start = 12;
    } else {
      fail_input(path + ": .npy format version " + std::to_string(major) + "." +
                 std::to_string(minor) + " is not supported (only 1.0 and 2.0)");
    }
    if (header_len > size - header_start) {
      fail_input(path + ": .npy header length " + std::to_string(header_len) +
                 " runs past the end of the file; it is truncated");
    }
    const std::string text(reinterpret_cast<const char*>(d + header_start), header_len);
    HeaderParser header(path, text);
    header.parse();
    if (header.fortran_order) {
      fail_input(path + ": Fortran-order .npy arrays are not supported; save it in C order "
                 "(np.save(path, np.ascontiguousarray(a)))");
    }
    const std::string& descr = header.descr;
    if (descr.size() < 2) fail_input(path + ": .npy descr '" + descr + "' is not understood");
    if (descr[0] == '>') {
      fail_input(path + ": big-endian .npy data (descr '" + descr + "') is not supported; "
                 "convert with a.astype(a.dtype.newbyteorder('<'))");
    }
    const Descr* found = nullptr;
    for (const auto& e : kDescrs) {
      if (descr.compare(1, std::string::npos, e.code) == 0) found = &e;
    }
    const bool one_byte = found && found->code[1] == '1';
    const bool order_ok = descr[0] == '<' || (one_byte && (descr[0] == '|' || descr[0] == '='));
    if (!found || !order_ok) {
      fail_input(path + ": .npy dtype '" + descr + "' is not supported (float32/64/16, int64/32/"
                 "16/8, uint8, bool, little-endian)");
    }
    const int64_t item = found->code[1] - '0';
    int64_t nbytes = item;
    for (int64_t dim : header.shape) {
      if (dim != 0 && nbytes > std::numeric_limits<int64_t>::max() / dim) {
        fail_input(path + ": .npy shape " + shape_str(header.shape) + " is absurdly large");
      }
      nbytes *= dim;
    }
    const size_t data_start = header_start + header_len;
    if (static_cast<uint64_t>(nbytes) > size - data_start) {
      fail_input(path + ": .npy data is truncated: shape " + shape_str(header.shape) + " needs " +
                 std::to_string(nbytes) + " bytes but the file holds " +
                 std::to_string(size - data_start));
    }
    at::Tensor out = at::empty(header.shape, at::TensorOptions().dtype(found->type));
    if (nbytes > 0) std::memcpy(out.data_ptr(), d + data_start, nbytes);
    return out;
  });
}

}  // namespace ms
