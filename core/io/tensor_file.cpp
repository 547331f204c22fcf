// Shared pieces of the weight-file readers: dtype facts, the read-only file mapping, and the
// conversion of a raw TensorView (F32/F16/BF16/F64, or ggml block-quantized) into a contiguous
// CPU tensor.
#include "core/io/tensor_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "core/base/malloc_reuse.h"
#include "core/io/ggml_quants.h"

namespace ms {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF64: return "F64";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kI16: return "I16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kBool: return "BOOL";
    default: break;
  }
  const QuantType* q = find_quant_type(t);
  return q ? q->name : "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF64:
    case DType::kI64: return 8;
    case DType::kF32:
    case DType::kI32: return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16: return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool: return 1;
    default: return 0;  // block-quantized
  }
}

bool dtype_is_float(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64 ||
         find_quant_type(t) != nullptr;
}

int64_t dtype_nbytes(DType t, int64_t numel) {
  if (numel < 0) return -1;
  if (const QuantType* q = find_quant_type(t)) {
    if (numel % q->block_elems != 0) return -1;
    int64_t blocks = numel / q->block_elems;
    if (blocks > std::numeric_limits<int64_t>::max() / q->block_bytes) return -1;
    return blocks * q->block_bytes;
  }
  int64_t size = static_cast<int64_t>(dtype_size(t));
  if (numel > std::numeric_limits<int64_t>::max() / size) return -1;
  return numel * size;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error{ErrorCode::kBadInput, path + ": cannot open: " + std::strerror(errno)};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Error{ErrorCode::kBadInput, path + ": cannot stat: " + std::strerror(err)};
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{ErrorCode::kBadInput, path + ": not a regular file"};
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->m_path = path;
  file->m_size = static_cast<size_t>(st.st_size);
  if (file->m_size > 0) {
    // Private and writable: tensors may share the mapping, and a write to one copies its page
    // instead of reaching the file (copy-on-write).
    void* p = ::mmap(nullptr, file->m_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return Error{ErrorCode::kInternal, path + ": cannot mmap: " + std::strerror(err)};
    }
    file->m_data = static_cast<const uint8_t*>(p);
    // Weights are streamed whole at every decode step: the page cache may hold a file read from
    // now on in 2 MiB folios mapped as huge pages (ext4 and others with large folios, kernels from
    // 6.x; a file already cached keeps its pages). MECHSCOPE_HUGE_PAGES=0 leaves it out.
    advise_huge_pages(p, file->m_size);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return file;
}

MappedFile::~MappedFile() {
  if (m_data) ::munmap(const_cast<uint8_t*>(m_data), m_size);
}

namespace {

at::ScalarType plain_scalar_type(DType t) {
  switch (t) {
    case DType::kF32: return at::kFloat;
    case DType::kF16: return at::kHalf;
    case DType::kBF16: return at::kBFloat16;
    case DType::kF64: return at::kDouble;
    default: break;
  }
  fail_input(std::string("dtype ") + dtype_name(t) + " cannot be converted to a float tensor");
}

}  // namespace

namespace {
// After a tensor was copied out of a file mapping (converted or dequantized), its pages are
// dropped from memory: a big checkpoint read in another dtype then costs its converted weights,
// not those plus the file (issue [3/7]: a bf16 Gemma-2-2B loaded as f32 within the f32 weights +
// 1.5 GiB). Only whole pages inside the tensor's bytes: a neighbour may share the boundary pages.
// The mapping is private and read from the file again should anything touch these pages.
at::Tensor released(const TensorView& view, at::Tensor copy) {
  if (!view.file || view.nbytes == 0) return copy;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(view.data), end = begin + view.nbytes;
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  return copy;
}
}  // namespace

at::Tensor to_tensor(const TensorView& view, c10::ScalarType dtype) {
  if (dtype != at::kFloat && dtype != at::kHalf && dtype != at::kBFloat16 &&
      dtype != at::kDouble) {
    fail_input("tensor '" + view.name + "': to_tensor only produces float tensors, not " +
               std::string(c10::toString(dtype)));
  }
  if (!dtype_is_float(view.dtype)) {
    fail_input("tensor '" + view.name + "' has dtype " + dtype_name(view.dtype) +
               ", which cannot be converted to a float tensor");
  }
  int64_t numel = view.numel();
  int64_t want = dtype_nbytes(view.dtype, numel);
  if (want < 0 || static_cast<size_t>(want) != view.nbytes || (want > 0 && !view.data)) {
    fail_input("tensor '" + view.name + "' has " + std::to_string(view.nbytes) +
               " bytes but shape " + shape_str(view.shape) + " x " + dtype_name(view.dtype) +
               " needs " + std::to_string(want));
  }
  if (const QuantType* q = find_quant_type(view.dtype)) {
    at::Tensor out = at::empty(view.shape, at::TensorOptions().dtype(at::kFloat));
    dequantize_blocks(*q, view.data, out.data_ptr<float>(), numel / q->block_elems);
    return released(view, dtype == at::kFloat ? out : out.to(dtype));
  }
  const at::ScalarType src_type = plain_scalar_type(view.dtype);
  const auto address = reinterpret_cast<uintptr_t>(view.data);
  if (numel > 0 && address % dtype_size(view.dtype) == 0 && src_type == dtype && view.file) {
    // Aligned and already the wanted dtype: share the mapping (zero copy); the tensor keeps the
    // file mapped for as long as it lives.
    std::shared_ptr<MappedFile> keep = view.file;
    return at::from_blob(const_cast<uint8_t*>(view.data), view.shape, [keep](void*) {},
                         at::TensorOptions().dtype(src_type));
  }
  if (numel > 0 && address % dtype_size(view.dtype) == 0) {
    // Aligned: read the mapping in place and convert in one pass (copy = true: a new tensor).
    at::Tensor src = at::from_blob(const_cast<uint8_t*>(view.data), view.shape,
                                   at::TensorOptions().dtype(src_type));
    return released(view, src.to(dtype, /*non_blocking=*/false, /*copy=*/true));
  }
  // Unaligned (or empty): copy the bytes into an aligned tensor first, then convert.
  at::Tensor raw = at::empty(view.shape, at::TensorOptions().dtype(src_type));
  if (view.nbytes > 0) std::memcpy(raw.data_ptr(), view.data, view.nbytes);
  return released(view, raw.scalar_type() == dtype ? raw : raw.to(dtype));
}

}  // namespace ms
