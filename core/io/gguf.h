// GGUF reader (llama.cpp's single-file format, versions 2 and 3): metadata key/values, tensor
// infos and data, memory-mapped. Tensors come out as TensorViews in PyTorch (outermost-first)
// order; F32, F16, BF16 and the block-quantized Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K ... Q6_K
// (core/io/ggml_quants.h) are supported, other ggml types are refused with their name.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/base/result.h"
#include "core/io/tensor_file.h"
#include "core/tokenizer/tokenizer.h"

namespace ms {

struct GgufValue;
using GgufArray = std::vector<GgufValue>;
// Integers of every width come out as int64_t (uint64 above INT64_MAX is refused), floats as
// double, strings as std::string, arrays as GgufArray.
struct GgufValue {
  std::variant<int64_t, double, bool, std::string, GgufArray> v;
};

class GgufFile : public TensorSource {
 public:
  // Validates magic, version, counts, string lengths, tensor offsets/alignment/sizes against the
  // file size. Errors name the file and the problem (kBadInput).
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);

  const TensorView* find(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override;

  uint32_t version() const { return m_version; }
  const std::map<std::string, GgufValue>& metadata() const { return m_metadata; }
  const GgufValue* get(const std::string& key) const;
  // Typed getters; throw InputError naming the file and key when the key is missing (no fallback
  // given) or of the wrong type. get_float also accepts an integer value.
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double fallback) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;

  // The embedded tokenizer (tokenizer.ggml.*); throws InputError when absent or malformed.
  // Absent keys take llama.cpp's defaults: for model "llama" unk 0, bos 1, eos 2, add_bos and
  // add_space_prefix true; for other models no special tokens and both false. A special token id
  // outside the vocabulary is ignored (the default stays), as llama.cpp does.
  GgufVocab vocab() const;

 private:
  std::string m_path;
  uint32_t m_version = 0;
  std::map<std::string, GgufValue> m_metadata;
  std::map<std::string, TensorView> m_tensors;
  std::vector<std::string> m_order;
};

}  // namespace ms
