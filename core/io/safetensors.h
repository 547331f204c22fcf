// Safetensors reader: an 8-byte little-endian header length, a JSON header, then raw bytes.
// Every header field is validated; single files and sharded checkpoints (index.json) both load.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "core/io/tensor_file.h"

namespace ms {

class SafetensorsFile : public TensorSource {
 public:
  // Maps and validates the file: header length sane and within the file, JSON well formed,
  // dtypes known, offsets in range and non-overlapping (holes between tensors are tolerated),
  // shape x dtype size equal to the byte length. Errors (kBadInput) name the file and the tensor.
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);

  const TensorView* find(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override;
  const std::map<std::string, std::string>& metadata() const { return m_metadata; }

 private:
  std::string m_path;
  std::map<std::string, TensorView> m_tensors;
  std::map<std::string, std::string> m_metadata;  // "__metadata__"
};

// A checkpoint of one or several safetensors files. With model.safetensors.index.json the
// weight_map decides which shard holds which tensor (every shard must exist, every mapped tensor
// must be in its shard); else the single model.safetensors.
class SafetensorsCheckpoint : public TensorSource {
 public:
  // dir: a model folder. Errors name the missing or malformed file.
  static Result<std::unique_ptr<SafetensorsCheckpoint>> open_dir(const std::string& dir);

  const TensorView* find(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override;

 private:
  std::string m_describe;
  std::vector<std::unique_ptr<SafetensorsFile>> m_files;
  std::map<std::string, const TensorView*> m_index;
};

// Writes tensors as one safetensors file (used by the zoo and by tests that make bad files).
// Writes to PATH.tmp and renames. CPU or CUDA tensors of dtype F32, F16, BF16, F64, I64, I32, I16,
// I8, U8 or BOOL, in the order given; the header is padded with spaces to a multiple of 8 bytes.
Status write_safetensors(const std::string& path,
                         const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace ms
