// SentencePiece ModelProto reader (protobuf wire format, the fields mechscope uses).
#include "core/tokenizer/sentencepiece_proto.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ms {
namespace {

// Protobuf wire format: each field is a varint key (number << 3 | wire type), then a varint
// (type 0), 8 bytes (1), a length-prefixed run (2) or 4 bytes (5).
class Reader {
 public:
  Reader(const std::string& b, size_t begin, size_t end, const std::string& where)
      : m_b(b), m_pos(begin), m_end(end), m_where(where) {}

  bool done() const { return m_pos >= m_end; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (m_pos >= m_end) bad("truncated varint");
      uint8_t c = static_cast<uint8_t>(m_b[m_pos++]);
      v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    bad("varint longer than 10 bytes");
  }

  // Reads a key; sets number and wire type.
  void key(uint32_t& number, uint32_t& wire) {
    uint64_t k = varint();
    number = static_cast<uint32_t>(k >> 3);
    wire = static_cast<uint32_t>(k & 7);
  }

  // A length-delimited field's [begin, end).
  std::pair<size_t, size_t> bytes() {
    uint64_t len = varint();
    if (len > m_end - m_pos) bad("length " + std::to_string(len) + " runs past the end");
    size_t b = m_pos;
    m_pos += static_cast<size_t>(len);
    return {b, m_pos};
  }

  float fixed32_float() {
    if (m_end - m_pos < 4) bad("truncated 32-bit field");
    float f;
    std::memcpy(&f, m_b.data() + m_pos, 4);
    m_pos += 4;
    return f;
  }

  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1:
        if (m_end - m_pos < 8) bad("truncated 64-bit field");
        m_pos += 8;
        break;
      case 2: bytes(); break;
      case 5: fixed32_float(); break;
      default: bad("unsupported wire type " + std::to_string(wire));
    }
  }

  [[noreturn]] void bad(const std::string& what) const {
    fail_input(m_where + ": not a valid SentencePiece model: " + what + " at byte " + std::to_string(m_pos));
  }

 private:
  const std::string& m_b;
  size_t m_pos, m_end;
  const std::string& m_where;
};

void read_piece(const std::string& b, std::pair<size_t, size_t> span, const std::string& where,
                SentencePieceModel& m) {
  Reader r(b, span.first, span.second, where);
  std::string piece;
  float score = 0;
  int32_t type = 1;
  while (!r.done()) {
    uint32_t n, w;
    r.key(n, w);
    if (n == 1 && w == 2) {
      auto s = r.bytes();
      piece = b.substr(s.first, s.second - s.first);
    } else if (n == 2 && w == 5) {
      score = r.fixed32_float();
    } else if (n == 3 && w == 0) {
      const uint64_t t = r.varint();
      if (t < 1 || t > 6) r.bad("piece type " + std::to_string(t) + " is not 1..6");
      type = static_cast<int32_t>(t);
    } else {
      r.skip(w);
    }
  }
  m.pieces.push_back(std::move(piece));
  m.scores.push_back(score);
  m.types.push_back(type);
}

void read_trainer(const std::string& b, std::pair<size_t, size_t> span, const std::string& where,
                  SentencePieceModel& m) {
  Reader r(b, span.first, span.second, where);
  while (!r.done()) {
    uint32_t n, w;
    r.key(n, w);
    if (w != 0) {
      r.skip(w);
      continue;
    }
    int64_t v = static_cast<int64_t>(r.varint());  // negative int32 values are 10-byte varints
    // Never truncated: an id of 2^32 + 1 must not become 1.
    if ((n == 3 || n == 40 || n == 41 || n == 42 || n == 43) && (v < INT32_MIN || v > INT32_MAX))
      r.bad("trainer field " + std::to_string(n) + " holds " + std::to_string(v) + ", outside 32 bits");
    switch (n) {
      case 3: m.model_type = static_cast<int32_t>(v); break;
      case 35: m.byte_fallback = v != 0; break;
      case 40: m.unk_id = static_cast<int32_t>(v); break;
      case 41: m.bos_id = static_cast<int32_t>(v); break;
      case 42: m.eos_id = static_cast<int32_t>(v); break;
      case 43: m.pad_id = static_cast<int32_t>(v); break;
      default: break;
    }
  }
}

void read_normalizer(const std::string& b, std::pair<size_t, size_t> span, const std::string& where,
                     SentencePieceModel& m) {
  Reader r(b, span.first, span.second, where);
  while (!r.done()) {
    uint32_t n, w;
    r.key(n, w);
    if (n == 1 && w == 2) {
      auto s = r.bytes();
      m.normalizer_name = b.substr(s.first, s.second - s.first);
    } else if (w == 0 && (n == 3 || n == 4 || n == 5)) {
      bool v = r.varint() != 0;
      if (n == 3) m.add_dummy_prefix = v;
      if (n == 4) m.remove_extra_whitespaces = v;
      if (n == 5) m.escape_whitespaces = v;
    } else {
      r.skip(w);
    }
  }
}

}  // namespace

Result<SentencePieceModel> parse_spm_proto(const std::string& b, const std::string& where) {
  return guard([&]() -> SentencePieceModel {
    SentencePieceModel m;
    Reader r(b, 0, b.size(), where);
    while (!r.done()) {
      uint32_t n, w;
      r.key(n, w);
      if (w == 2 && (n == 1 || n == 2 || n == 3)) {
        auto span = r.bytes();
        if (n == 1) read_piece(b, span, where, m);
        if (n == 2) read_trainer(b, span, where, m);
        if (n == 3) read_normalizer(b, span, where, m);
      } else {
        r.skip(w);
      }
    }
    if (m.pieces.empty()) fail_input(where + ": not a valid SentencePiece model: it has no pieces");
    auto check_id = [&](int32_t id, const char* what) {
      if (id < -1 || id >= static_cast<int32_t>(m.pieces.size()))
        fail_input(where + ": " + what + " id " + std::to_string(id) + " is beyond the " +
                   std::to_string(m.pieces.size()) + " pieces");
    };
    check_id(m.unk_id, "unknown-token");
    check_id(m.bos_id, "BOS");
    check_id(m.eos_id, "EOS");
    check_id(m.pad_id, "padding");
    return m;
  });
}

Result<SentencePieceModel> read_spm_proto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{ErrorCode::kBadInput, path + ": cannot read the file"};
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_spm_proto(ss.str(), path);
}

}  // namespace ms
