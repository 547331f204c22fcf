// GGUF reader: parses the header, metadata key/values and tensor infos of a memory-mapped
// llama.cpp model file, every read bounds-checked, and exposes the tensors as TensorViews.
// The typed metadata getters and the embedded vocabulary live in gguf_vocab.cpp.
#include "core/io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/io/ggml_quants.h"

namespace ms {
namespace {

constexpr uint32_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;
constexpr int kMaxArrayDepth = 4;
// Elements of one metadata array (vocabularies are at most 2^24 tokens): each costs a GgufValue
// in memory, far more than its bytes in the file.
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 24;

enum ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

// The smallest encoding of one value of the type, to bound array lengths by the bytes left.
size_t min_value_bytes(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: case kString: return 8;
    case kArray: return 12;
    default: return 0;
  }
}

// ggml type ids as llama.cpp numbers them (gaps are retired types).
const char* ggml_type_name(uint32_t t) {
  static const char* const kNames[] = {
      "F32",     "F16",    "Q4_0",    "Q4_1",  "Q4_2",   "Q4_3",  "Q5_0",   "Q5_1",
      "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",   "Q5_K",  "Q6_K",   "Q8_K",
      "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",  "IQ4_XS",
      "I8",      "I16",    "I32",     "I64",   "F64",    "IQ1_M", "BF16",   nullptr,
      nullptr,   nullptr,  "TQ1_0",   "TQ2_0", nullptr,  nullptr, nullptr,  "MXFP4"};
  if (t < sizeof(kNames) / sizeof(kNames[0]) && kNames[t]) return kNames[t];
  return "unknown";
}

// The plain float types by ggml id; the block-quantized ones come from ggml_quants' table.
bool supported_ggml_type(uint32_t t, DType* out) {
  switch (t) {
    case 0: *out = DType::kF32; return true;
    case 1: *out = DType::kF16; return true;
    case 30: *out = DType::kBF16; return true;
    default: break;
  }
  const QuantType* q = find_quant_type_by_ggml(t);
  if (q) *out = q->dtype;
  return q != nullptr;
}

// Bounds-checked little-endian reads over the mapping; every overrun is an InputError.
class Reader {
 public:
  Reader(const std::string& path, const uint8_t* data, size_t size)
      : m_path(path), m_data(data), m_size(size) {}

  size_t pos() const { return m_pos; }
  size_t remaining() const { return m_size - m_pos; }
  // What is being read, for truncation messages ("key 'general.name'").
  void set_context(std::string context) { m_context = std::move(context); }

  const uint8_t* take(size_t n) {
    if (n > remaining()) {
      fail_input(m_path + ": truncated file: reading " + m_context + " at offset " +
                 std::to_string(m_pos) + " needs " + std::to_string(n) +
                 " bytes but the file ends at " + std::to_string(m_size));
    }
    const uint8_t* p = m_data + m_pos;
    m_pos += n;
    return p;
  }
  template <class T>
  T read() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  std::string read_string() {
    uint64_t len = read<uint64_t>();
    if (len > remaining()) {
      fail_input(m_path + ": truncated or corrupt file: a string in " + m_context +
                 " at offset " + std::to_string(m_pos - 8) + " claims " + std::to_string(len) +
                 " bytes but only " + std::to_string(remaining()) + " remain");
    }
    const uint8_t* p = take(static_cast<size_t>(len));
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  }

  GgufValue read_value(uint32_t type, int depth) {
    GgufValue out;
    switch (type) {
      case kU8: out.v = static_cast<int64_t>(read<uint8_t>()); break;
      case kI8: out.v = static_cast<int64_t>(read<int8_t>()); break;
      case kU16: out.v = static_cast<int64_t>(read<uint16_t>()); break;
      case kI16: out.v = static_cast<int64_t>(read<int16_t>()); break;
      case kU32: out.v = static_cast<int64_t>(read<uint32_t>()); break;
      case kI32: out.v = static_cast<int64_t>(read<int32_t>()); break;
      case kI64: out.v = read<int64_t>(); break;
      case kU64: {
        uint64_t u = read<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          fail_input(m_path + ": " + m_context + " holds the uint64 " + std::to_string(u) +
                     ", too large for this reader");
        }
        out.v = static_cast<int64_t>(u);
        break;
      }
      case kF32: out.v = static_cast<double>(read<float>()); break;
      case kF64: out.v = read<double>(); break;
      case kBool: {
        uint8_t b = read<uint8_t>();
        if (b > 1) {
          fail_input(m_path + ": " + m_context + " holds a bool byte " + std::to_string(b) +
                     " (must be 0 or 1); the file is corrupt");
        }
        out.v = b == 1;
        break;
      }
      case kString: out.v = read_string(); break;
      case kArray: {
        if (depth >= kMaxArrayDepth) {
          fail_input(m_path + ": " + m_context + " nests arrays too deeply; the file is corrupt");
        }
        uint32_t elem = read<uint32_t>();
        size_t min_bytes = min_value_bytes(elem);
        if (min_bytes == 0) {
          fail_input(m_path + ": " + m_context + " is an array of unknown value type " +
                     std::to_string(elem) + "; the file is corrupt or from a newer GGUF");
        }
        uint64_t n = read<uint64_t>();
        if (n > kMaxArrayElements) {
          fail_input(m_path + ": " + m_context + " claims " + std::to_string(n) +
                     " array elements, more than the limit of " + std::to_string(kMaxArrayElements) +
                     "; the file is corrupt");
        }
        if (n > remaining() / min_bytes) {
          fail_input(m_path + ": truncated or corrupt file: " + m_context + " claims " +
                     std::to_string(n) + " array elements but only " +
                     std::to_string(remaining()) + " bytes remain");
        }
        GgufArray arr;
        arr.reserve(static_cast<size_t>(n));
        for (uint64_t i = 0; i < n; ++i) arr.push_back(read_value(elem, depth + 1));
        out.v = std::move(arr);
        break;
      }
      default:
        fail_input(m_path + ": " + m_context + " has unknown value type " +
                   std::to_string(type) + "; the file is corrupt or from a newer GGUF");
    }
    return out;
  }

 private:
  const std::string& m_path;
  const uint8_t* m_data;
  size_t m_size;
  size_t m_pos = 0;
  std::string m_context = "the header";
};

struct RawInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order, ne[0] innermost
  uint32_t type = 0;
  uint64_t offset = 0;
};

}  // namespace

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.error();
  std::shared_ptr<MappedFile> file = mapped.value();
  return guard([&]() -> std::unique_ptr<GgufFile> {
    const std::string& p = path;
    Reader r(p, file->data(), file->size());
    auto out = std::unique_ptr<GgufFile>(new GgufFile());
    out->m_path = p;

    if (file->size() < 4 || std::memcmp(file->data(), "GGUF", 4) != 0) {
      fail_input(p + ": not a GGUF file (the file does not start with the magic \"GGUF\")");
    }
    r.take(4);
    r.set_context("the header");
    uint32_t version = r.read<uint32_t>();
    if (version == 1) {
      fail_input(p + ": GGUF version 1 is not supported (only versions 2 and 3); re-convert the "
                 "model with a current llama.cpp");
    }
    if (version > 3 && (version & 0xFFFF) == 0) {
      fail_input(p + ": this appears to be a big-endian GGUF file; only little-endian is "
                 "supported");
    }
    if (version < 2 || version > 3) {
      fail_input(p + ": GGUF version " + std::to_string(version) +
                 " is not supported (only versions 2 and 3)");
    }
    out->m_version = version;
    uint64_t n_tensors = r.read<uint64_t>();
    uint64_t n_kv = r.read<uint64_t>();
    if (n_kv > r.remaining() / 13) {
      fail_input(p + ": header claims " + std::to_string(n_kv) +
                 " metadata entries, more than the file can hold; it is truncated or corrupt");
    }

    for (uint64_t i = 0; i < n_kv; ++i) {
      r.set_context("metadata entry " + std::to_string(i));
      std::string key = r.read_string();
      r.set_context("metadata key '" + key + "'");
      uint32_t type = r.read<uint32_t>();
      GgufValue value = r.read_value(type, 0);
      if (!out->m_metadata.emplace(key, std::move(value)).second) {
        fail_input(p + ": metadata key '" + key + "' appears twice");
      }
    }

    if (n_tensors > r.remaining() / 32) {
      fail_input(p + ": header claims " + std::to_string(n_tensors) +
                 " tensors, more than the file can hold; it is truncated or corrupt");
    }
    std::vector<RawInfo> infos;
    infos.reserve(static_cast<size_t>(n_tensors));
    for (uint64_t i = 0; i < n_tensors; ++i) {
      RawInfo info;
      r.set_context("tensor info " + std::to_string(i));
      info.name = r.read_string();
      r.set_context("the info of tensor '" + info.name + "'");
      const std::string where = p + ": tensor '" + info.name + "'";
      uint32_t n_dims = r.read<uint32_t>();
      if (n_dims < 1 || n_dims > kMaxDims) {
        fail_input(where + " has " + std::to_string(n_dims) + " dimensions (must be 1 to 4)");
      }
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t ne = r.read<uint64_t>();
        if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          fail_input(where + " has dimension " + std::to_string(d) + " of size " +
                     std::to_string(ne) + " (must be positive)");
        }
        info.ne.push_back(static_cast<int64_t>(ne));
      }
      info.type = r.read<uint32_t>();
      info.offset = r.read<uint64_t>();
      infos.push_back(std::move(info));
    }

    uint64_t alignment = kDefaultAlignment;
    if (const GgufValue* a = out->get("general.alignment")) {
      const int64_t* v = std::get_if<int64_t>(&a->v);
      if (!v || *v <= 0 || (*v & (*v - 1)) != 0 || *v > (1 << 24)) {
        fail_input(p + ": general.alignment must be a positive power of two");
      }
      alignment = static_cast<uint64_t>(*v);
    }
    const uint64_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
    const uint64_t data_size = data_start < file->size() ? file->size() - data_start : 0;

    struct Span {
      uint64_t begin, end;
      const std::string* name;
    };
    std::vector<Span> spans;
    for (const RawInfo& info : infos) {
      const std::string where = p + ": tensor '" + info.name + "'";
      TensorView view;
      if (!supported_ggml_type(info.type, &view.dtype)) {
        fail_input(where + " has ggml type " + ggml_type_name(info.type) + " (" +
                   std::to_string(info.type) + "); only F32, F16, BF16, " + quant_type_names() +
                   " are supported. Re-quantize the model to one of these (llama-quantize "
                   "--allow-requantize MODEL OUT Q4_K_M) or convert the original weights to F16 "
                   "(convert_hf_to_gguf.py --outtype f16)");
      }
      const QuantType* quant = find_quant_type(view.dtype);
      if (quant && info.ne[0] % quant->block_elems != 0) {
        fail_input(where + " is " + quant->name + " but its row length " +
                   std::to_string(info.ne[0]) + " is not a multiple of " + quant->name +
                   "'s block size " + std::to_string(quant->block_elems) +
                   "; the file is corrupt");
      }
      int64_t numel = 1;
      for (int64_t ne : info.ne) {
        if (numel > std::numeric_limits<int64_t>::max() / ne) {
          fail_input(where + " has an absurd number of elements; the file is corrupt");
        }
        numel *= ne;
      }
      int64_t nbytes = dtype_nbytes(view.dtype, numel);
      if (nbytes < 0) fail_input(where + " is too large; the file is corrupt");
      if (info.offset % alignment != 0) {
        fail_input(where + " has data offset " + std::to_string(info.offset) +
                   ", not a multiple of the alignment " + std::to_string(alignment));
      }
      if (info.offset > data_size || static_cast<uint64_t>(nbytes) > data_size - info.offset) {
        fail_input(where + " (" + std::to_string(nbytes) + " bytes at data offset " +
                   std::to_string(info.offset) + ") runs past the end of the file (" +
                   std::to_string(data_size) + " bytes of tensor data); it is truncated");
      }
      if (out->m_tensors.count(info.name)) fail_input(where + " appears twice");
      view.name = info.name;
      view.shape.assign(info.ne.rbegin(), info.ne.rend());  // PyTorch order: outermost first
      view.data = file->data() + data_start + info.offset;
      view.nbytes = static_cast<size_t>(nbytes);
      view.file = file;
      spans.push_back({info.offset, info.offset + static_cast<uint64_t>(nbytes), &info.name});
      out->m_order.push_back(info.name);
      out->m_tensors.emplace(info.name, std::move(view));
    }
    std::sort(spans.begin(), spans.end(),
              [](const Span& a, const Span& b) { return a.begin < b.begin; });
    for (size_t i = 1; i < spans.size(); ++i) {
      if (spans[i].begin < spans[i - 1].end) {
        fail_input(p + ": tensor '" + *spans[i].name + "' overlaps tensor '" +
                   *spans[i - 1].name + "' in the data section; the file is corrupt");
      }
    }
    return out;
  });
}

const TensorView* GgufFile::find(const std::string& name) const {
  auto it = m_tensors.find(name);
  return it == m_tensors.end() ? nullptr : &it->second;
}

std::vector<std::string> GgufFile::names() const { return m_order; }

std::string GgufFile::describe() const { return m_path; }

const GgufValue* GgufFile::get(const std::string& key) const {
  auto it = m_metadata.find(key);
  return it == m_metadata.end() ? nullptr : &it->second;
}

}  // namespace ms
