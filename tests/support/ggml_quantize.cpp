// The tests' quantizer for ggml's block types: packing of codes into ggml's block layouts, one
// formula per type for what a block means, and a simple range-covering quantizer.
#include "tests/support/ggml_quantize.h"

#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace ms::test {
namespace {

const QuantSpec kSpecs[] = {
    // type       name    block bytes sub  q range    sc range   mn  m
    {kGgmlQ4_0, "Q4_0", 32, 18, 32, -8, 7, 1, 1, 0, false},
    {kGgmlQ4_1, "Q4_1", 32, 20, 32, 0, 15, 1, 1, 0, true},
    {kGgmlQ5_0, "Q5_0", 32, 22, 32, -16, 15, 1, 1, 0, false},
    {kGgmlQ5_1, "Q5_1", 32, 24, 32, 0, 31, 1, 1, 0, true},
    {kGgmlQ8_0, "Q8_0", 32, 34, 32, -128, 127, 1, 1, 0, false},
    {kGgmlQ2_K, "Q2_K", 256, 84, 16, 0, 3, 0, 15, 15, false},
    {kGgmlQ3_K, "Q3_K", 256, 110, 16, -4, 3, -32, 31, 0, false},
    {kGgmlQ4_K, "Q4_K", 256, 144, 32, 0, 15, 0, 63, 63, false},
    {kGgmlQ5_K, "Q5_K", 256, 176, 32, 0, 31, 0, 63, 63, false},
    {kGgmlQ6_K, "Q6_K", 256, 210, 16, -32, 31, -128, 127, 0, false},
};

bool is_k(const QuantSpec& s) { return s.block == 256; }

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xFF);
  p[1] = static_cast<uint8_t>(v >> 8);
}

// Four 2-bit codes per byte, as Q2_K and Q3_K store them: in each half of 128 values, byte l
// holds values l, l + 32, l + 64 and l + 96 from its low bits up.
void pack_2bit(uint8_t* qs, const int* low2) {
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int* v = low2 + 128 * h + l;
      qs[32 * h + l] = static_cast<uint8_t>(v[0] | (v[32] << 2) | (v[64] << 4) | (v[96] << 6));
    }
  }
}

// Q4_K/Q5_K's twelve bytes of 6-bit scales and mins: sub-blocks 0-3 in the low 6 bits of bytes
// 0-3 (scale) and 4-7 (min); sub-blocks 4-7 in the nibbles of bytes 8-11 (scale low, min high)
// with their top 2 bits in the top bits of bytes 0-3 (scale) and 4-7 (min).
void pack_scales_k4(uint8_t* out, const std::vector<int>& sc, const std::vector<int>& mn) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(sc[j]);
    out[j + 4] = static_cast<uint8_t>(mn[j]);
  }
  for (int j = 4; j < 8; ++j) {
    out[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
    out[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
    out[j] |= static_cast<uint8_t>((mn[j] >> 4) << 6);
  }
}

void check_codes(const QuantSpec& s, const BlockCodes& c) {
  const size_t n_sub = static_cast<size_t>(s.block / s.sub);
  bool ok = c.q.size() == static_cast<size_t>(s.block);
  for (int q : c.q) ok = ok && q >= s.q_min && q <= s.q_max;
  if (is_k(s)) {
    ok = ok && c.sc.size() == n_sub && (s.mn_max == 0 || c.mn.size() == n_sub);
    for (int v : c.sc) ok = ok && v >= s.sc_min && v <= s.sc_max;
    for (int v : c.mn) ok = ok && v >= 0 && v <= s.mn_max;
  }
  if (!ok) throw std::invalid_argument(std::string("pack_block: codes out of range for ") + s.name);
}

}  // namespace

const QuantSpec& quant_spec(uint32_t type) {
  for (const QuantSpec& s : kSpecs) {
    if (s.type == type) return s;
  }
  throw std::invalid_argument("quant_spec: not a block type: " + std::to_string(type));
}

const std::vector<uint32_t>& quant_types() {
  static const std::vector<uint32_t> kTypes = [] {
    std::vector<uint32_t> t;
    for (const QuantSpec& s : kSpecs) t.push_back(s.type);
    return t;
  }();
  return kTypes;
}

std::string pack_block(uint32_t type, const BlockCodes& c) {
  const QuantSpec& s = quant_spec(type);
  check_codes(s, c);
  std::string bytes(static_cast<size_t>(s.bytes), '\0');
  uint8_t* p = reinterpret_cast<uint8_t*>(bytes.data());
  const std::vector<int>& q = c.q;
  switch (type) {
    case kGgmlQ8_0:
      put16(p, c.d);
      for (int j = 0; j < 32; ++j) p[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q[j]));
      break;
    case kGgmlQ4_0:
    case kGgmlQ4_1:
    case kGgmlQ5_0:
    case kGgmlQ5_1: {
      // d (and m), then for the 5-bit types the fifth bits (bit j of a little-endian uint32 for
      // value j), then nibbles: byte j holds value j low and value j + 16 high.
      const int bias = -s.q_min;
      put16(p, c.d);
      uint8_t* next = p + 2;
      if (s.has_m) {
        put16(next, c.m);
        next += 2;
      }
      if (s.q_max - s.q_min == 31) {
        uint32_t qh = 0;
        for (int j = 0; j < 32; ++j) qh |= static_cast<uint32_t>(((q[j] + bias) >> 4) & 1) << j;
        std::memcpy(next, &qh, 4);
        next += 4;
      }
      for (int j = 0; j < 16; ++j) {
        next[j] = static_cast<uint8_t>(((q[j] + bias) & 0xF) | (((q[j + 16] + bias) & 0xF) << 4));
      }
      break;
    }
    case kGgmlQ2_K:  // scales[16] (scale | min << 4), qs[64], d, dmin
      for (int j = 0; j < 16; ++j) p[j] = static_cast<uint8_t>(c.sc[j] | (c.mn[j] << 4));
      pack_2bit(p + 16, q.data());
      put16(p + 80, c.d);
      put16(p + 82, c.m);
      break;
    case kGgmlQ3_K: {  // hmask[32], qs[64], scales[12], d
      std::vector<int> low2(256);
      for (int e = 0; e < 256; ++e) {
        const int u = q[e] + 4;  // 0..7; the third bit goes to hmask: bit e / 32 of byte e % 32
        if (u > 3) p[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
        low2[e] = u & 3;
      }
      pack_2bit(p + 32, low2.data());
      uint8_t* scales = p + 96;
      for (int j = 0; j < 16; ++j) {  // 6-bit sc + 32: low nibbles in bytes 0-7, top 2 bits in 8-11
        const int l = c.sc[j] + 32;
        if (j < 8) {
          scales[j] |= static_cast<uint8_t>(l & 0xF);
        } else {
          scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        }
        scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      put16(p + 108, c.d);
      break;
    }
    case kGgmlQ4_K:  // d, dmin, scales[12], qs[128]: byte 32 g + l holds values 64 g + l, 64 g + 32 + l
    case kGgmlQ5_K: {  // d, dmin, scales[12], qh[32], qs[128]
      put16(p, c.d);
      put16(p + 2, c.m);
      pack_scales_k4(p + 4, c.sc, c.mn);
      const bool five = type == kGgmlQ5_K;
      uint8_t* qh = p + 16;
      uint8_t* qs = five ? p + 48 : p + 16;
      for (int g = 0; g < 4; ++g) {
        for (int l = 0; l < 32; ++l) {
          const int a = q[64 * g + l], b = q[64 * g + 32 + l];
          qs[32 * g + l] = static_cast<uint8_t>((a & 0xF) | ((b & 0xF) << 4));
          if (five) qh[l] |= static_cast<uint8_t>((((a >> 4) & 1) << (2 * g)) | (((b >> 4) & 1) << (2 * g + 1)));
        }
      }
      break;
    }
    case kGgmlQ6_K: {  // ql[128], qh[64], scales[16], d
      uint8_t* ql = p;
      uint8_t* qh = p + 128;
      for (int h = 0; h < 2; ++h) {
        for (int l = 0; l < 32; ++l) {
          const int* v = q.data() + 128 * h + l;
          const int u0 = v[0] + 32, u1 = v[32] + 32, u2 = v[64] + 32, u3 = v[96] + 32;
          ql[64 * h + l] = static_cast<uint8_t>((u0 & 0xF) | ((u2 & 0xF) << 4));
          ql[64 * h + 32 + l] = static_cast<uint8_t>((u1 & 0xF) | ((u3 & 0xF) << 4));
          qh[32 * h + l] = static_cast<uint8_t>((u0 >> 4) | ((u1 >> 4) << 2) | ((u2 >> 4) << 4) | ((u3 >> 4) << 6));
        }
      }
      for (int j = 0; j < 16; ++j) p[192 + j] = static_cast<uint8_t>(static_cast<int8_t>(c.sc[j]));
      put16(p + 208, c.d);
      break;
    }
    default:
      throw std::invalid_argument("pack_block: unhandled type");
  }
  return bytes;
}

double code_value(uint32_t type, const BlockCodes& c, int e) {
  const QuantSpec& s = quant_spec(type);
  const double d = half_to_float(c.d), m = half_to_float(c.m);
  if (!is_k(s)) return d * c.q[e] + (s.has_m ? m : 0.0);
  const int j = e / s.sub;
  return d * c.sc[j] * c.q[e] - (s.mn_max ? m * c.mn[j] : 0.0);
}

namespace {

BlockCodes quantize_block(const QuantSpec& s, const float* x) {
  BlockCodes c;
  c.q.assign(s.block, 0);
  auto code = [&](double v, double step) {
    return step > 0 ? static_cast<int>(std::clamp<long>(std::lround(v / step), s.q_min, s.q_max)) : 0;
  };
  if (!is_k(s)) {
    double lo = x[0], hi = x[0], amax = 0;
    for (int e = 0; e < s.block; ++e) {
      lo = std::min<double>(lo, x[e]);
      hi = std::max<double>(hi, x[e]);
      amax = std::max<double>(amax, std::fabs(x[e]));
    }
    if (s.has_m) {  // v = d q + m, q in 0..q_max: m at most the minimum, d covering max - m
      c.m = half_at_most(static_cast<float>(lo));
      const double m = half_to_float(c.m);
      c.d = half_at_least(static_cast<float>((hi - m) / s.q_max));
      const double d = half_to_float(c.d);
      for (int e = 0; e < s.block; ++e) c.q[e] = code(x[e] - m, d);
    } else {  // v = d q, |q| <= q_max
      c.d = half_at_least(static_cast<float>(amax / s.q_max));
      const double d = half_to_float(c.d);
      for (int e = 0; e < s.block; ++e) c.q[e] = code(x[e], d);
    }
    return c;
  }
  const int n_sub = s.block / s.sub;
  std::vector<double> need(n_sub), span(n_sub), off(n_sub, 0.0);
  c.sc.assign(n_sub, 0);
  if (s.mn_max) c.mn.assign(n_sub, 0);
  for (int j = 0; j < n_sub; ++j) {
    const float* v = x + j * s.sub;
    double lo = 0, hi = v[0], amax = 0;
    for (int i = 0; i < s.sub; ++i) {
      lo = std::min<double>(lo, v[i]);
      hi = std::max<double>(hi, v[i]);
      amax = std::max<double>(amax, std::fabs(v[i]));
    }
    need[j] = s.mn_max ? -lo : amax;  // the offset to cover (mins), or the magnitude
    span[j] = hi;
  }
  if (s.mn_max) {  // dmin * mn >= -min(0, x) for each sub-block, mn rounded up
    c.m = half_at_least(static_cast<float>(*std::max_element(need.begin(), need.end()) / s.mn_max));
    const double dmin = half_to_float(c.m);
    for (int j = 0; j < n_sub; ++j) {
      c.mn[j] = dmin > 0 ? std::min(s.mn_max, static_cast<int>(std::ceil(need[j] / dmin))) : 0;
      off[j] = dmin * c.mn[j];
      span[j] = (span[j] + off[j]) / s.q_max;  // step covering 0 .. max + offset
    }
  } else {
    for (int j = 0; j < n_sub; ++j) span[j] = need[j] / s.q_max;  // step covering -amax .. amax
  }
  c.d = half_at_least(static_cast<float>(*std::max_element(span.begin(), span.end()) / s.sc_max));
  const double d = half_to_float(c.d);
  for (int j = 0; j < n_sub; ++j) {
    c.sc[j] = d > 0 ? std::min(s.sc_max, static_cast<int>(std::ceil(span[j] / d))) : 0;
    const double step = d * c.sc[j];
    for (int i = 0; i < s.sub; ++i) c.q[j * s.sub + i] = code(x[j * s.sub + i] + off[j], step);
  }
  return c;
}

}  // namespace

std::string quantize_row(uint32_t type, const float* x, int64_t n, std::vector<BlockCodes>* codes) {
  const QuantSpec& s = quant_spec(type);
  if (n % s.block != 0) throw std::invalid_argument("quantize_row: length not a multiple of the block");
  std::string out;
  out.reserve(static_cast<size_t>(n / s.block * s.bytes));
  for (int64_t b = 0; b < n / s.block; ++b) {
    BlockCodes c = quantize_block(s, x + b * s.block);
    out += pack_block(type, c);
    if (codes) codes->push_back(std::move(c));
  }
  return out;
}

float half_to_float(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  double v;
  if (exp == 0) {
    v = std::ldexp(mant, -24);
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else {
    v = std::ldexp(mant + 1024, exp - 25);
  }
  return static_cast<float>(sign ? -v : v);
}

uint16_t float_to_half(float f) { return c10::Half(f).x; }

uint16_t half_at_least(float f) {
  uint16_t h = float_to_half(f);
  if (half_to_float(h) < f) {
    if (!(h & 0x8000)) {
      ++h;
    } else {
      h = (h & 0x7FFF) == 0 ? 1 : h - 1;
    }
  }
  return h;
}

uint16_t half_at_most(float f) {
  uint16_t h = float_to_half(f);
  if (half_to_float(h) > f) {
    if (h & 0x8000) {
      ++h;
    } else {
      h = h == 0 ? 0x8001 : h - 1;
    }
  }
  return h;
}

}  // namespace ms::test
