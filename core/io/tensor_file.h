// What the weight-file readers (safetensors, GGUF) hand to the model loader: named raw tensors
// viewed in a memory-mapped file, and their conversion to LibTorch tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/base/result.h"

namespace at { class Tensor; }
namespace c10 { enum class ScalarType : int8_t; }

namespace ms {

// The plain dtypes, then ggml's block-quantized ones (GGUF only; their block layouts and
// dequantizers are in core/io/ggml_quants.h).
enum class DType {
  kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool,
  kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0, kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K,
};
const char* dtype_name(DType t);  // "F32", "Q4_K", ...
// Bytes per element (F32: 4, BOOL: 1); for a block-quantized dtype, 0 (see dtype_nbytes).
size_t dtype_size(DType t);
// Whether to_tensor can turn the dtype into a float tensor (F32, F16, BF16, F64 and every
// block-quantized dtype).
bool dtype_is_float(DType t);
// Bytes that numel elements of dtype t take, or -1 when that overflows or (block-quantized)
// numel is not a whole number of blocks.
int64_t dtype_nbytes(DType t, int64_t numel);
// "[5, 6]", for messages.
std::string shape_str(const std::vector<int64_t>& shape);

// A read-only memory mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return m_data; }
  size_t size() const { return m_size; }
  const std::string& path() const { return m_path; }

 private:
  MappedFile() = default;
  const uint8_t* m_data = nullptr;
  size_t m_size = 0;
  std::string m_path;
};

// One tensor inside a mapped file. shape is row-major, outermost first (PyTorch order; GGUF's
// ggml ne[] order is reversed by its reader). data stays valid while `file` lives.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<MappedFile> file;
  int64_t numel() const;
};

// A set of named tensors from one or more files (a sharded checkpoint, a GGUF file).
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // nullptr when absent.
  virtual const TensorView* find(const std::string& name) const = 0;
  virtual std::vector<std::string> names() const = 0;
  // Where the tensors come from, for messages: "model.safetensors", "model.gguf".
  virtual std::string describe() const = 0;
};

// Converts (copies) a view to a contiguous CPU tensor of the given floating dtype; F16 and BF16
// are converted, block-quantized dtypes dequantized to float32 first (as ggml does) and then
// converted. Throws InputError for a dtype that cannot become a float.
// When the view is aligned and already of that dtype, the tensor shares the file's copy-on-write
// mapping instead (no copy; pages are read on first use, writes stay private to the process).
at::Tensor to_tensor(const TensorView& view, c10::ScalarType dtype);

}  // namespace ms
