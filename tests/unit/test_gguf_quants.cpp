// GGUF block-quantized tensors (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K ... Q6_K): blocks written from
// known integer codes by the tests' own packer (tests/support/ggml_quantize) dequantize to the
// values the format's formula gives those codes, random rows quantized by the tests' quantizer
// come back within half a quantization step, and bad row lengths, truncated or absurdly large
// tensors of every type are refused before anything is allocated.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/io/gguf.h"
#include "tests/support/ggml_quantize.h"
#include "tests/support/gguf_builder.h"
#include "tests/support/test_support.h"

namespace {

using ms::test::BlockCodes;
using ms::test::GgufBuilder;
using ms::test::QuantSpec;
using ms::test::quant_spec;
using ms::test::quant_types;

std::unique_ptr<ms::GgufFile> open_bytes(const std::string& bytes, const std::string& name) {
  const std::string path = ms::test::temp_dir("gguf-quants") + "/" + name;
  ms::test::write_file(path, bytes);
  auto r = ms::GgufFile::open(path);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(r.value()) : nullptr;
}

void expect_bad(const std::string& bytes, const std::string& phrase) {
  const std::string path = ms::test::temp_dir("gguf-quants") + "/broken.gguf";
  ms::test::write_file(path, bytes);
  auto r = ms::GgufFile::open(path);
  ASSERT_FALSE(r.ok()) << "opened a broken file: expected '" << phrase << "'";
  EXPECT_EQ(r.error().code, ms::ErrorCode::kBadInput);
  EXPECT_NE(r.error().message.find("broken.gguf"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(phrase), std::string::npos) << r.error().message;
}

// f16 scales of several magnitudes and both signs (ggml's Q4_0 quantizer stores negative d):
// 1, 0.5, ~0.1, -0.25, ~2^-10, a subnormal (2^-15), 192.
const std::vector<uint16_t> kHalfScales = {0x3C00, 0x3800, 0x2E66, 0xB400, 0x1400, 0x0200, 0x5A00};

// Block b's codes: uniform over each code's whole range; the last two blocks take every code at
// one end of its range (q, sc at their minimum and mn at its maximum, then the reverse).
BlockCodes known_codes(const QuantSpec& s, int b, int n_blocks, std::mt19937& rng) {
  BlockCodes c;
  c.d = kHalfScales[b % kHalfScales.size()];
  c.m = kHalfScales[(b + 3) % kHalfScales.size()];
  const bool k = s.block == 256;
  const int n_sub = s.block / s.sub;
  auto pick = [&](int lo, int hi) {
    if (b == n_blocks - 2) return lo;
    if (b == n_blocks - 1) return hi;
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  for (int e = 0; e < s.block; ++e) c.q.push_back(pick(s.q_min, s.q_max));
  if (k) {
    for (int j = 0; j < n_sub; ++j) c.sc.push_back(pick(s.sc_min, s.sc_max));
    if (s.mn_max) {
      for (int j = 0; j < n_sub; ++j) c.mn.push_back(s.mn_max - pick(0, s.mn_max));
    }
  }
  return c;
}

TEST(GgufQuants, BlocksOfKnownCodesDequantizeToTheFormulasValues) {
  std::mt19937 rng(14);
  for (uint32_t type : quant_types()) {
    const QuantSpec& s = quant_spec(type);
    // 512 rows of 4 blocks: enough values for several parallel chunks, rows in order.
    const int64_t rows = 512, per_row = 4, n_blocks = rows * per_row;
    std::vector<BlockCodes> codes;
    std::string data;
    for (int64_t b = 0; b < n_blocks; ++b) {
      codes.push_back(known_codes(s, static_cast<int>(b), static_cast<int>(n_blocks), rng));
      data += ms::test::pack_block(type, codes.back());
    }
    ASSERT_EQ(data.size(), static_cast<size_t>(n_blocks * s.bytes));
    GgufBuilder g;
    g.tensor("w", {static_cast<uint64_t>(per_row * s.block), static_cast<uint64_t>(rows)}, type, data);
    auto f = open_bytes(g.build(), std::string(s.name) + ".gguf");
    ASSERT_TRUE(f);
    const ms::TensorView* v = f->find("w");
    ASSERT_NE(v, nullptr);
    EXPECT_STREQ(ms::dtype_name(v->dtype), s.name);
    EXPECT_EQ(v->shape, (std::vector<int64_t>{rows, per_row * s.block}));
    EXPECT_EQ(v->nbytes, static_cast<size_t>(n_blocks * s.bytes));
    at::Tensor t = ms::to_tensor(*v, at::kFloat);
    ASSERT_EQ(t.numel(), n_blocks * s.block);
    // Every product of an f16 scale (11 significant bits) and codes of at most 12 bits together
    // is exact in float32, and so is the double formula; ggml's float32 dequantizer then rounds
    // once, where it adds the offset: the values must be equal, not close.
    const float* p = t.data_ptr<float>();
    int64_t mismatches = 0;
    for (int64_t k = 0; k < t.numel(); ++k) {
      const float want = static_cast<float>(
          ms::test::code_value(type, codes[static_cast<size_t>(k / s.block)], static_cast<int>(k % s.block)));
      if (p[k] != want && mismatches++ < 3) {
        ADD_FAILURE() << s.name << ": value " << k << " (block " << k / s.block << ", position "
                      << k % s.block << ") is " << p[k] << ", the codes give " << want;
      }
    }
    EXPECT_EQ(mismatches, 0) << s.name;
    EXPECT_TRUE(at::equal(ms::to_tensor(*v, at::kDouble), t.to(at::kDouble))) << s.name;
    EXPECT_TRUE(at::equal(ms::to_tensor(*v, at::kBFloat16), t.to(at::kBFloat16))) << s.name;
  }
}

// The largest error quantize_row may leave in one block of x, from the block's own values: half
// of a sub-block's step. The step covers the sub-block's range with the type's codes: its
// largest magnitude over q_max for the symmetric types, max - min over q_max with an offset
// (where the offset, a whole number of dmin units for the K-quants, may add one unit). For the
// K-quants the step is then rounded up to a whole number of super-block units d (at most one
// more unit). A slack of 2^-10 of the block's largest magnitude covers the f16 rounding of the
// scales (rounded up, 2^-11 relative) and float32's rounding in the dequantizer.
double error_bound(const QuantSpec& s, const float* x, int sub_index) {
  const int n_sub = s.block / s.sub;
  std::vector<double> lo(n_sub, 0), hi(n_sub), amax(n_sub, 0);
  double block_amax = 0, block_lo = x[0];
  for (int j = 0; j < n_sub; ++j) {
    hi[j] = x[j * s.sub];
    for (int i = 0; i < s.sub; ++i) {
      const double v = x[j * s.sub + i];
      lo[j] = std::min(lo[j], v);
      hi[j] = std::max(hi[j], v);
      amax[j] = std::max(amax[j], std::fabs(v));
      block_lo = std::min(block_lo, v);
    }
    block_amax = std::max(block_amax, amax[j]);
  }
  const double slack = std::ldexp(block_amax, -10);
  if (s.block == 32) {
    const double step = s.has_m ? (hi[0] - block_lo) / s.q_max : amax[0] / s.q_max;
    return 0.5 * step + slack;
  }
  double dmin_unit = 0;
  if (s.mn_max) {
    for (int j = 0; j < n_sub; ++j) dmin_unit = std::max(dmin_unit, -lo[j] / s.mn_max);
  }
  std::vector<double> step(n_sub);
  for (int j = 0; j < n_sub; ++j) {
    step[j] = s.mn_max ? (hi[j] - lo[j] + dmin_unit) / s.q_max : amax[j] / s.q_max;
  }
  const double d_unit = *std::max_element(step.begin(), step.end()) / s.sc_max;
  return 0.5 * (step[sub_index] + d_unit) + slack;
}

TEST(GgufQuants, QuantizedRandomRowsComeBackWithinHalfAStep) {
  std::mt19937 rng(2026);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint32_t type : quant_types()) {
    const QuantSpec& s = quant_spec(type);
    const int64_t rows = 16, n = 4 * s.block;
    // Gaussian rows with a per-row offset and scale (some rows all positive or all negative,
    // one row of zeros), so that mins, offsets and zero blocks all occur.
    std::vector<float> x(static_cast<size_t>(rows * n));
    for (int64_t r = 0; r < rows; ++r) {
      const float offset = static_cast<float>(r % 5) - 2.0f, scale = r == 3 ? 0.0f : 0.1f + 0.2f * (r % 4);
      for (int64_t i = 0; i < n; ++i) x[r * n + i] = r == 3 ? 0.0f : offset * 3 * scale + scale * normal(rng);
    }
    std::string data;
    for (int64_t r = 0; r < rows; ++r) data += ms::test::quantize_row(type, x.data() + r * n, n);
    GgufBuilder g;
    g.tensor("w", {static_cast<uint64_t>(n), static_cast<uint64_t>(rows)}, type, data);
    auto f = open_bytes(g.build(), std::string(s.name) + "-random.gguf");
    ASSERT_TRUE(f);
    at::Tensor t = ms::to_tensor(*f->find("w"), at::kFloat);
    const float* p = t.data_ptr<float>();
    double worst = 0, sum_sq = 0, sum_sq_x = 0;
    for (int64_t k = 0; k < rows * n; ++k) {
      const float* block = x.data() + k / s.block * s.block;
      const double err = std::fabs(static_cast<double>(p[k]) - x[static_cast<size_t>(k)]);
      worst = std::max(worst, err / error_bound(s, block, static_cast<int>(k % s.block / s.sub)));
      sum_sq += err * err;
      sum_sq_x += static_cast<double>(x[static_cast<size_t>(k)]) * x[static_cast<size_t>(k)];
    }
    std::printf("numeric: %s round trip: worst error %.3f of its bound, rms error %.4f of the rms value\n",
                s.name, worst, std::sqrt(sum_sq / sum_sq_x));
    EXPECT_LE(worst, 1.0) << s.name;
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(p[3 * n + i], 0.0f) << s.name << ": a zero row";
  }
}

TEST(GgufQuants, RefusesBadRowLengthsTruncatedAndAbsurdTensorsOfEveryType) {
  for (uint32_t type : quant_types()) {
    const QuantSpec& s = quant_spec(type);
    const std::string name = s.name;
    const auto block = static_cast<uint64_t>(s.block);
    {  // one and a half blocks per row: ggml cannot store that
      GgufBuilder g;
      g.tensor("blk.0.attn_q.weight", {block + block / 2, 2}, type, std::string(3 * s.bytes, '\0'));
      expect_bad(g.build(), "tensor 'blk.0.attn_q.weight' is " + name + " but its row length " +
                                std::to_string(block + block / 2) + " is not a multiple of " + name +
                                "'s block size " + std::to_string(block));
    }
    {  // three blocks less one byte, at the end of the file
      GgufBuilder g;
      g.tensor("w", {block, 3}, type, std::string(3 * s.bytes - 1, '\1'));
      expect_bad(g.build(), "tensor 'w' (" + std::to_string(3 * s.bytes) + " bytes at data offset 0) runs past the end");
    }
    {  // 2^62 - block values per row, twice: their bytes overflow an int64 for the types of more
       // than a byte per value (Q8_0, Q6_K...); for the others they still run past the end
      GgufBuilder g;
      const uint64_t row = (uint64_t{1} << 62) - block;
      g.tensor("w", {row, 2}, type, std::string(s.bytes, '\0'));
      const bool overflows = 2 * (row / block) > static_cast<uint64_t>(INT64_MAX / s.bytes);
      expect_bad(g.build(), overflows ? "tensor 'w' is too large" : "runs past the end of the file");
    }
    {  // 2^60 values whose size fits in an int64 but not in the file
      GgufBuilder g;
      g.tensor("w", {uint64_t{1} << 40, uint64_t{1} << 20}, type, std::string(s.bytes, '\0'));
      expect_bad(g.build(), "runs past the end of the file");
    }
  }
}

}  // namespace
