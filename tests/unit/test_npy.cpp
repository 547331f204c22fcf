// .npy tests: the exact bytes numpy writes for small arrays, round trips over dtypes and 0-d/1-d/
// 3-d shapes, version 2.0 headers, and the refusals (Fortran order, big-endian, truncation).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstring>

#include "core/io/npy.h"
#include "tests/support/test_support.h"

namespace {

using ms::ErrorCode;
using ms::test::read_file;
using ms::test::temp_dir;
using ms::test::write_file;

// The bytes numpy 1.24.2 (Debian bookworm's python3-numpy) writes, obtained with
//   /usr/bin/python3 -c "import numpy as np; np.save('/tmp/x.npy', A)"; xxd /tmp/x.npy
// for A = np.arange(6, dtype=np.float32).reshape(2, 3), np.array(3.5) and np.arange(5):
// "\x93NUMPY", version 1.0, header length 0x0076 (118), the dict, spaces (21 - digits of the
// first dimension are reserved for growth, then padding to 64 bytes in all), a newline, data.
std::string numpy_bytes(const std::string& dict, size_t spaces, const std::string& data_hex) {
  std::string out("\x93NUMPY\x01\x00\x76\x00", 10);
  out += dict + std::string(spaces, ' ') + "\n";
  for (size_t i = 0; i < data_hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(data_hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

const std::string kNumpy2x3F32 = numpy_bytes(
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 58,
    "000000000000803f0000004000004040000080400000a040");
const std::string kNumpyScalarF64 =
    numpy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 62, "0000000000000c40");
const std::string kNumpyArange5I64 = numpy_bytes(
    "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", 60,
    "0000000000000000010000000000000002000000000000000300000000000000"
    "0400000000000000");

std::string write_and_read_bytes(const at::Tensor& t) {
  std::string path = temp_dir("npy") + "/x.npy";
  EXPECT_TRUE(ms::write_npy(path, t).ok());
  return read_file(path);
}

at::Tensor read_ok(const std::string& path) {
  auto r = ms::read_npy(path);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? r.value() : at::Tensor();
}

void expect_bad(const std::string& bytes, const std::string& phrase) {
  std::string path = temp_dir("npy-bad") + "/broken.npy";
  write_file(path, bytes);
  auto r = ms::read_npy(path);
  ASSERT_FALSE(r.ok()) << "read a broken file: expected '" << phrase << "'";
  EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
  EXPECT_NE(r.error().message.find("broken.npy"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(phrase), std::string::npos) << r.error().message;
}

TEST(Npy, WritesExactlyWhatNumpyWrites) {
  ASSERT_EQ(kNumpy2x3F32.size(), 128u + 24u);
  EXPECT_EQ(write_and_read_bytes(at::arange(6, at::kFloat).reshape({2, 3})), kNumpy2x3F32);
  EXPECT_EQ(write_and_read_bytes(at::scalar_tensor(3.5, at::kDouble)), kNumpyScalarF64);
  EXPECT_EQ(write_and_read_bytes(at::arange(5, at::kLong)), kNumpyArange5I64);
}

TEST(Npy, ReadsWhatNumpyWrites) {
  std::string path = temp_dir("npy-np") + "/a.npy";
  write_file(path, kNumpyArange5I64);
  at::Tensor t = read_ok(path);
  EXPECT_EQ(t.scalar_type(), at::kLong);
  EXPECT_TRUE(at::equal(t, at::arange(5, at::kLong)));
  write_file(path, kNumpyScalarF64);
  t = read_ok(path);
  EXPECT_EQ(t.dim(), 0);
  EXPECT_EQ(t.item<double>(), 3.5);
}

TEST(Npy, RoundTripsDtypesAndShapes) {
  at::manual_seed(3);
  const std::vector<at::Tensor> tensors = {
      at::randn({2, 3, 4}),
      at::randn({5}).to(at::kHalf),
      at::randint(-1000, 1000, {3, 1, 2}, at::kLong),
      at::scalar_tensor(-2.25f),
      at::randint(0, 100, {7}, at::kInt),
      at::randn({4}) > 0,
      at::randint(0, 255, {2, 2}, at::kByte),
      at::randn({0, 3}),
      at::randn({3, 4}).t(),  // non-contiguous
  };
  std::string dir = temp_dir("npy-rt");
  for (size_t i = 0; i < tensors.size(); ++i) {
    std::string path = dir + "/t" + std::to_string(i) + ".npy";
    ASSERT_TRUE(ms::write_npy(path, tensors[i]).ok()) << i;
    EXPECT_EQ(read_file(path).size() % 64, tensors[i].nbytes() % 64) << "header not 64-aligned";
    at::Tensor back = read_ok(path);
    ASSERT_TRUE(back.defined());
    EXPECT_EQ(back.scalar_type(), tensors[i].scalar_type()) << i;
    EXPECT_EQ(back.sizes(), tensors[i].sizes()) << i;
    EXPECT_TRUE(at::equal(back, tensors[i])) << i;
  }
  // bfloat16 is written as float32.
  at::Tensor bf = at::randn({3}).to(at::kBFloat16);
  ASSERT_TRUE(ms::write_npy(dir + "/bf.npy", bf).ok());
  at::Tensor back = read_ok(dir + "/bf.npy");
  EXPECT_EQ(back.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(back, bf.to(at::kFloat)));
}

TEST(Npy, ReadsVersion2Headers) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  header.append(64 - (12 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::string bytes("\x93NUMPY\x02\x00", 8);
  uint32_t n = static_cast<uint32_t>(header.size());
  bytes.append(reinterpret_cast<const char*>(&n), 4);
  float data[2] = {1.5f, -2.0f};
  bytes += header + std::string(reinterpret_cast<const char*>(data), 8);
  std::string path = temp_dir("npy-v2") + "/v2.npy";
  write_file(path, bytes);
  at::Tensor t = read_ok(path);
  ASSERT_EQ(t.numel(), 2);
  EXPECT_EQ(t[1].item<float>(), -2.0f);
}

TEST(Npy, RefusesWhatItCannotRead) {
  std::string good = kNumpyArange5I64;
  auto with_dict = [&](std::string from, std::string to) {
    std::string s = good;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos);
    s.replace(at, from.size(), to);
    return s;
  };
  expect_bad(with_dict("False", "True "), "Fortran-order");
  expect_bad(with_dict("'<i8'", "'>i8'"), "big-endian");
  expect_bad(with_dict("'<i8'", "'<c8'"), "dtype '<c8' is not supported");
  expect_bad(with_dict("'shape'", "'shapf'"), "malformed .npy header");
  expect_bad(with_dict("(5,)", "(5;)"), "malformed .npy header");
  expect_bad(good.substr(0, good.size() - 3), "data is truncated");
  expect_bad(good.substr(0, 50), "runs past the end of the file");
  expect_bad("PK\x03\x04", "not a .npy file");
  std::string v3 = good;
  v3[6] = 3;
  expect_bad(v3, "version 3.0 is not supported");
}

}  // namespace
