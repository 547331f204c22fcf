// NumPy .npy files (format version 1.0/2.0): writing tensors for users (np.load), and reading
// them back (tests, reference fixtures).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base/result.h"

namespace at { class Tensor; }

namespace ms {

// Writes a CPU or CUDA tensor (copied to CPU, made contiguous) as little-endian .npy with its own
// dtype (float32, float16, bfloat16 is written as float32, int64, int32, bool, ...). Writes to
// PATH.tmp then renames, so a failure never leaves a truncated file.
Status write_npy(const std::string& path, const at::Tensor& tensor);
// Reads float32/float64/float16/int64/int32/bool .npy (C order; Fortran order refused).
Result<at::Tensor> read_npy(const std::string& path);
// The same from bytes in memory (an .npz entry); `where` names the source in messages. Every
// header field and the data length are checked against size before anything is allocated.
Result<at::Tensor> parse_npy(const uint8_t* data, size_t size, const std::string& where);

}  // namespace ms
