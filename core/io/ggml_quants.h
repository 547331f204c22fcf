// ggml's block-quantized tensor types (Q4_0 ... Q8_0, Q2_K ... Q6_K) as GGUF files store them:
// one table of type id, name, block size and block bytes, and a dequantizer per type that gives,
// value for value, what ggml's reference dequantize_row_* functions give.
#pragma once

#include <cstdint>
#include <string>

namespace ms {

enum class DType;

// One block-quantized type. A tensor of it is a sequence of blocks, each holding block_elems
// consecutive values (of one row: a row's length must be a multiple of block_elems) in
// block_bytes bytes; dequantize_block turns one block into block_elems float32 values.
struct QuantType {
  DType dtype;
  uint32_t ggml_type;  // ggml's type id, as GGUF tensor infos carry it
  const char* name;    // ggml's name: "Q4_K"
  int64_t block_elems;
  int64_t block_bytes;
  void (*dequantize_block)(const uint8_t* block, float* out);
};

// The entry for a quantized DType, or nullptr for a plain one (F32, I64, ...).
const QuantType* find_quant_type(DType t);
// The entry for a ggml type id, or nullptr when the type is not one this reader dequantizes.
const QuantType* find_quant_type_by_ggml(uint32_t ggml_type);
// "Q4_0, Q4_1, ..., Q6_K", for messages naming what is supported.
std::string quant_type_names();

// Dequantizes n_blocks consecutive blocks of type q from src into dst (n_blocks * block_elems
// floats), in parallel over blocks. The caller has checked that src holds n_blocks blocks.
void dequantize_blocks(const QuantType& q, const uint8_t* src, float* dst, int64_t n_blocks);

}  // namespace ms
