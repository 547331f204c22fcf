// A small quantizer for ggml's block types, written for the tests from the block layouts
// (ggml-common.h) and not from the reader: integer codes and scales in, block bytes out
// (pack_block), and float rows in, blocks out (quantize_row). What a block means is stated here
// in one formula per type (code_value), independently of the reader's dequantizers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ms::test {

// ggml type ids (ggml.h).
enum GgmlType : uint32_t {
  kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ4_1 = 3, kGgmlQ5_0 = 6, kGgmlQ5_1 = 7,
  kGgmlQ8_0 = 8, kGgmlQ2_K = 10, kGgmlQ3_K = 11, kGgmlQ4_K = 12, kGgmlQ5_K = 13, kGgmlQ6_K = 14,
  kGgmlBF16 = 30,
};

// What a block of each type holds. A value is d * sc * q + m for the legacy types (sc = 1; m
// only for Q4_1/Q5_1, else 0) and d * sc[s] * q - dmin * mn[s] for the K-quants (mn only for
// Q2_K, Q4_K, Q5_K), s the value's sub-block. q, sc and mn are integers in the ranges below.
struct QuantSpec {
  uint32_t type;
  const char* name;
  int block;         // values per block
  int bytes;         // bytes per block
  int sub;           // values per sub-block sharing sc/mn (= block for the legacy types)
  int q_min, q_max;  // q's range
  int sc_min, sc_max;  // sc's range (1, 1 for the legacy types)
  int mn_max;        // mn in 0..mn_max; 0: no per-sub-block min
  bool has_m;        // Q4_1, Q5_1: an f16 min m per block
};
const QuantSpec& quant_spec(uint32_t type);
// The ten block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
const std::vector<uint32_t>& quant_types();

// One block by its codes. d and m are f16 bits (m: Q4_1/Q5_1's m, the K-quants' dmin).
struct BlockCodes {
  uint16_t d = 0, m = 0;
  std::vector<int> sc, mn;  // per sub-block (empty for the legacy types)
  std::vector<int> q;       // per value
};
// The block's bytes, laid out as ggml lays them out.
std::string pack_block(uint32_t type, const BlockCodes& c);
// Value e of the block by the formula above, in double (exact for codes in range).
double code_value(uint32_t type, const BlockCodes& c, int e);

// Quantizes n values (n a multiple of the block) to blocks: per sub-block the step that covers
// its range (its largest magnitude, or max - min with the offset) with the type's codes, scales
// rounded up to whole super-block units so that no value has to be clamped. codes, when given,
// receives each block's codes.
std::string quantize_row(uint32_t type, const float* x, int64_t n,
                         std::vector<BlockCodes>* codes = nullptr);

// IEEE half <-> float, by the bit fields (round to nearest even, for the encoder).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
// The f16 nearest to f that is >= f (>= 0 for f >= 0), for scales that must not shrink.
uint16_t half_at_least(float f);
// The f16 nearest to f that is <= f, for mins that must not rise.
uint16_t half_at_most(float f);

}  // namespace ms::test
