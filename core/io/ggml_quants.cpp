// Dequantizers for ggml's block-quantized types, written from the block layouts of ggml's
// ggml-common.h and the reference dequantize_row_* of ggml-quants.c (llama.cpp commit 01243c5,
// layouts unchanged since the K-quants' 256-value super-blocks, 2023). Each works on one block
// and computes in float32 in ggml's order of operations, so the values match ggml's bit for bit.
#include "core/io/ggml_quants.h"
#include "core/base/parallel.h"

#include <ATen/Parallel.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstring>

#include "core/io/tensor_file.h"

namespace ms {
namespace {

constexpr int kQK = 32;    // values per block of the legacy types (QK4_0 ... QK8_0)
constexpr int kQKK = 256;  // values per super-block of the K-quants (QK_K)

float f16_at(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return static_cast<float>(c10::Half(bits, c10::Half::from_bits()));
}

// Q8_0 (34 bytes): f16 d, int8 qs[32]. v = q * d.
void dequantize_q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// Q4_0 (18 bytes): f16 d, qs[16]; value j in the low nibble of qs[j], value j + 16 in its high
// nibble. v = (q - 8) * d.
void dequantize_q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// Q4_1 (20 bytes): f16 d, f16 m, qs[16] as Q4_0. v = q * d + m.
void dequantize_q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + kQK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// The 5-bit legacy types: the low 4 bits as Q4_0, the fifth bit of value j is bit j of the
// little-endian uint32 qh.
int q5_code(const uint8_t* qs, uint32_t qh, int j) {
  const int low = j < kQK / 2 ? (qs[j] & 0x0F) : (qs[j - kQK / 2] >> 4);
  return low | static_cast<int>(((qh >> j) & 1u) << 4);
}

// Q5_0 (22 bytes): f16 d, qh[4], qs[16]. v = (q - 16) * d.
void dequantize_q5_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q5_code(b + 6, qh, j) - 16) * d;
}

// Q5_1 (24 bytes): f16 d, f16 m, qh[4], qs[16]. v = q * d + m.
void dequantize_q5_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q5_code(b + 8, qh, j)) * d + m;
}

// Q2_K (84 bytes): scales[16] (low nibble: scale, high nibble: min, one pair per 16 values),
// qs[64], f16 d, f16 dmin. Value e = 128 h + 32 s + l (h < 2, s < 4, l < 32) is bits 2s..2s+1 of
// qs[32 h + l]; its pair is scales[e / 16]. v = (d * scale) * q - dmin * min.
void dequantize_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = f16_at(b + 80), dmin = f16_at(b + 82);
  for (int e = 0; e < kQKK; ++e) {
    const uint8_t sc = scales[e / 16];
    const float dl = d * static_cast<float>(sc & 0x0F);
    const float ml = dmin * static_cast<float>(sc >> 4);
    const int q = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    y[e] = dl * static_cast<float>(q) - ml;
  }
}

// Q3_K (110 bytes): hmask[32], qs[64], scales[12], f16 d. Value e's low 2 bits sit as in Q2_K;
// its third bit is bit e / 32 of hmask[e % 32], and a clear bit subtracts 4 (q in -4..3).
// Sixteen 6-bit scales, one per 16 values: the low 4 bits of scale s are the low nibble of
// scales[s] (s < 8) or the high nibble of scales[s - 8]; its high 2 bits are bits 2 (s / 4) and
// up of scales[8 + s % 4]; the stored value is offset by 32. v = (d * (scale - 32)) * q.
void dequantize_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* scales = b + 96;
  const float d = f16_at(b + 108);
  for (int e = 0; e < kQKK; ++e) {
    const int s = e / 16;
    const int low = s < 8 ? (scales[s] & 0x0F) : (scales[s - 8] >> 4);
    const int high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    const float dl = d * static_cast<float>((low | (high << 4)) - 32);
    const int q2 = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    const int q = q2 - ((hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4);
    y[e] = dl * static_cast<float>(q);
  }
}

// The 6-bit scale and min of sub-block j (of 8) of Q4_K and Q5_K, packed in 12 bytes: for j < 4
// the low 6 bits of bytes j (scale) and j + 4 (min); for j >= 4 the nibbles of byte j + 4 (scale
// low, min high) with the top 2 bits of bytes j - 4 (scale) and j (min) above them.
void scale_min_k4(const uint8_t* q, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K (144 bytes): f16 d, f16 dmin, scales[12], qs[128]. Value e = 64 g + 32 k + l (g < 4,
// k < 2, l < 32) is the low (k = 0) or high (k = 1) nibble of qs[32 g + l], in sub-block
// j = e / 32. v = (d * scale_j) * q - dmin * min_j.
void dequantize_q4_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int j = 0; j < kQKK / 32; ++j) {
    int sc, mn;
    scale_min_k4(scales, j, &sc, &mn);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = 4 * (j % 2);
    for (int l = 0; l < 32; ++l) {
      y[32 * j + l] = d1 * static_cast<float>((q[l] >> shift) & 0x0F) - m1;
    }
  }
}

// Q5_K (176 bytes): f16 d, f16 dmin, scales[12], qh[32], qs[128]. As Q4_K, plus a fifth bit:
// bit j of qh[l] for value 32 j + l. v = (d * scale_j) * q - dmin * min_j.
void dequantize_q5_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int j = 0; j < kQKK / 32; ++j) {
    int sc, mn;
    scale_min_k4(scales, j, &sc, &mn);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(mn);
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = 4 * (j % 2);
    for (int l = 0; l < 32; ++l) {
      const int code = ((q[l] >> shift) & 0x0F) | (((qh[l] >> j) & 1) << 4);
      y[32 * j + l] = d1 * static_cast<float>(code) - m1;
    }
  }
}

// Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], f16 d. Value e = 128 h + 32 k + l
// (h < 2, k < 4, l < 32): low 4 bits in ql[64 h + 32 (k % 2) + l], low nibble for k < 2, high
// for k >= 2; high 2 bits are bits 2k..2k+1 of qh[32 h + l]; offset 32 (q in -32..31); scale
// scales[e / 16]. v = (d * scale) * q.
void dequantize_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int e = 0; e < kQKK; ++e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const int low = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
    const int high = (qh[32 * h + l] >> (2 * k)) & 3;
    const int q = (low | (high << 4)) - 32;
    y[e] = d * static_cast<float>(scales[e / 16]) * static_cast<float>(q);
  }
}

// Every block-quantized type this reader dequantizes, in ggml's type-id order.
const QuantType kQuantTypes[] = {
    {DType::kQ4_0, 2, "Q4_0", kQK, 18, dequantize_q4_0},
    {DType::kQ4_1, 3, "Q4_1", kQK, 20, dequantize_q4_1},
    {DType::kQ5_0, 6, "Q5_0", kQK, 22, dequantize_q5_0},
    {DType::kQ5_1, 7, "Q5_1", kQK, 24, dequantize_q5_1},
    {DType::kQ8_0, 8, "Q8_0", kQK, 34, dequantize_q8_0},
    {DType::kQ2_K, 10, "Q2_K", kQKK, 84, dequantize_q2_k},
    {DType::kQ3_K, 11, "Q3_K", kQKK, 110, dequantize_q3_k},
    {DType::kQ4_K, 12, "Q4_K", kQKK, 144, dequantize_q4_k},
    {DType::kQ5_K, 13, "Q5_K", kQKK, 176, dequantize_q5_k},
    {DType::kQ6_K, 14, "Q6_K", kQKK, 210, dequantize_q6_k},
};

}  // namespace

const QuantType* find_quant_type(DType t) {
  for (const QuantType& q : kQuantTypes) {
    if (q.dtype == t) return &q;
  }
  return nullptr;
}

const QuantType* find_quant_type_by_ggml(uint32_t ggml_type) {
  for (const QuantType& q : kQuantTypes) {
    if (q.ggml_type == ggml_type) return &q;
  }
  return nullptr;
}

std::string quant_type_names() {
  std::string out;
  for (const QuantType& q : kQuantTypes) {
    if (!out.empty()) out += ", ";
    out += q.name;
  }
  return out;
}

void dequantize_blocks(const QuantType& q, const uint8_t* src, float* dst, int64_t n_blocks) {
  // Grain: about 32k values per task, whatever the block size.
  const int64_t grain = std::max<int64_t>(1, 32768 / q.block_elems);
  ms::parallel_for(0, n_blocks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      q.dequantize_block(src + b * q.block_bytes, dst + b * q.block_elems);
    }
  });
}

}  // namespace ms
