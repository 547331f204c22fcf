// Safetensors reader/writer tests: bitwise round trips, sharded checkpoints with an index, and
// every malformed-header case the reader must refuse with a kBadInput error naming the file.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstring>

#include "core/io/safetensors.h"
#include "tests/support/test_support.h"

namespace {

using ms::ErrorCode;
using ms::test::temp_dir;
using ms::test::write_file;

// An 8-byte little-endian header length, the header text, then the data bytes.
std::string st_bytes(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out + header + data;
}

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

// Opens bytes written to DIR/NAME and expects a kBadInput error whose message names the file
// and contains `phrase`.
void expect_bad(const std::string& name, const std::string& bytes, const std::string& phrase) {
  std::string path = temp_dir("st-bad") + "/" + name;
  write_file(path, bytes);
  auto r = ms::SafetensorsFile::open(path);
  ASSERT_FALSE(r.ok()) << "opened a broken file: expected '" << phrase << "'";
  EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
  EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(phrase), std::string::npos) << r.error().message;
}

TEST(Safetensors, RoundTripIsBitwiseForFloatDtypes) {
  at::manual_seed(7);
  at::Tensor f32 = at::randn({3, 5});
  at::Tensor f16 = at::randn({4, 2, 3}).to(at::kHalf);
  at::Tensor bf16 = at::randn({7}).to(at::kBFloat16);
  at::Tensor i64 = at::arange(12, at::kLong).reshape({3, 4});
  at::Tensor i32 = at::arange(5, at::kInt);
  at::Tensor strided = at::randn({4, 6}).t();  // non-contiguous input
  std::string path = temp_dir("st-rt") + "/model.safetensors";
  ASSERT_TRUE(ms::write_safetensors(path,
                                    {{"a.f32", f32}, {"b.f16", f16}, {"c.bf16", bf16},
                                     {"d.i64", i64}, {"e.i32", i32}, {"f.t", strided}},
                                    {{"format", "pt"}})
                  .ok());
  auto r = ms::SafetensorsFile::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& file = *r.value();
  EXPECT_EQ(file.names().size(), 6u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.find("nope"), nullptr);

  EXPECT_EQ(file.find("b.f16")->dtype, ms::DType::kF16);
  EXPECT_EQ(file.find("b.f16")->shape, (std::vector<int64_t>{4, 2, 3}));
  EXPECT_TRUE(same_bytes(ms::to_tensor(*file.find("a.f32"), at::kFloat), f32));
  EXPECT_TRUE(same_bytes(ms::to_tensor(*file.find("b.f16"), at::kHalf), f16));
  EXPECT_TRUE(same_bytes(ms::to_tensor(*file.find("c.bf16"), at::kBFloat16), bf16));
  EXPECT_TRUE(same_bytes(ms::to_tensor(*file.find("f.t"), at::kFloat), strided.contiguous()));
  // Conversion to float32 is exact for F16 and BF16.
  EXPECT_TRUE(same_bytes(ms::to_tensor(*file.find("b.f16"), at::kFloat), f16.to(at::kFloat)));
  EXPECT_TRUE(same_bytes(ms::to_tensor(*file.find("c.bf16"), at::kFloat), bf16.to(at::kFloat)));

  const ms::TensorView* iv = file.find("d.i64");
  ASSERT_NE(iv, nullptr);
  EXPECT_EQ(iv->dtype, ms::DType::kI64);
  EXPECT_EQ(std::memcmp(iv->data, i64.data_ptr(), 96), 0);
  EXPECT_THROW(ms::to_tensor(*iv, at::kFloat), ms::InputError);
}

TEST(Safetensors, HeaderIsPaddedToEightBytes) {
  std::string path = temp_dir("st-pad") + "/model.safetensors";
  ASSERT_TRUE(ms::write_safetensors(path, {{"x", at::ones({3})}}).ok());
  std::string bytes = ms::test::read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 12);
}

TEST(Safetensors, SingleFileCheckpoint) {
  std::string dir = temp_dir("st-single");
  ASSERT_TRUE(ms::write_safetensors(dir + "/model.safetensors", {{"w", at::ones({2, 2})}}).ok());
  auto r = ms::SafetensorsCheckpoint::open_dir(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_NE(r.value()->find("w"), nullptr);
  EXPECT_EQ(r.value()->names(), std::vector<std::string>{"w"});
}

TEST(Safetensors, ShardedCheckpointWithIndex) {
  std::string dir = temp_dir("st-shard");
  at::Tensor a = at::randn({4, 4}), b = at::randn({8}), c = at::randn({2, 3}).to(at::kBFloat16);
  ASSERT_TRUE(ms::write_safetensors(dir + "/model-00001-of-00002.safetensors",
                                    {{"layer.0.w", a}, {"layer.0.b", b}}).ok());
  ASSERT_TRUE(ms::write_safetensors(dir + "/model-00002-of-00002.safetensors",
                                    {{"layer.1.w", c}, {"unlisted", b}}).ok());
  write_file(dir + "/model.safetensors.index.json", R"({
    "metadata": {"total_size": 100},
    "weight_map": {
      "layer.0.w": "model-00001-of-00002.safetensors",
      "layer.0.b": "model-00001-of-00002.safetensors",
      "layer.1.w": "model-00002-of-00002.safetensors"
    }})");
  auto r = ms::SafetensorsCheckpoint::open_dir(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& ckpt = *r.value();
  EXPECT_EQ(ckpt.names().size(), 3u);
  EXPECT_EQ(ckpt.find("unlisted"), nullptr);
  EXPECT_TRUE(same_bytes(ms::to_tensor(*ckpt.find("layer.0.w"), at::kFloat), a));
  EXPECT_TRUE(same_bytes(ms::to_tensor(*ckpt.find("layer.0.b"), at::kFloat), b));
  EXPECT_TRUE(same_bytes(ms::to_tensor(*ckpt.find("layer.1.w"), at::kBFloat16), c));
  EXPECT_NE(ckpt.describe().find("2 shards"), std::string::npos) << ckpt.describe();
}

TEST(Safetensors, CheckpointErrors) {
  {
    std::string dir = temp_dir("st-empty");
    auto r = ms::SafetensorsCheckpoint::open_dir(dir);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("no safetensors weights were found in " + dir),
              std::string::npos)
        << r.error().message;
  }
  std::string dir = temp_dir("st-shard-bad");
  ASSERT_TRUE(ms::write_safetensors(dir + "/a.safetensors", {{"x", at::ones({2})}}).ok());
  ASSERT_TRUE(ms::write_safetensors(dir + "/b.safetensors", {{"y", at::ones({2})}}).ok());
  auto open_with_index = [&](const std::string& index) {
    write_file(dir + "/model.safetensors.index.json", index);
    return ms::SafetensorsCheckpoint::open_dir(dir);
  };
  {  // a shard named by the index is missing
    auto r = open_with_index(R"({"weight_map": {"x": "a.safetensors", "z": "c.safetensors"}})");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("model.safetensors.index.json"), std::string::npos);
    EXPECT_NE(r.error().message.find("'c.safetensors', which does not exist"), std::string::npos)
        << r.error().message;
  }
  {  // a tensor mapped to the wrong shard
    auto r = open_with_index(R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors"}})");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("tensor 'y' to shard 'a.safetensors', but that shard does "
                                     "not contain it"),
              std::string::npos)
        << r.error().message;
  }
  {  // malformed index
    auto r = open_with_index(R"({"weight_map": )");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("not valid JSON"), std::string::npos) << r.error().message;
    r = open_with_index(R"({"metadata": {}})");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("no \"weight_map\""), std::string::npos);
  }
  {  // a corrupt shard: its own error, naming the shard
    write_file(dir + "/b.safetensors", "xyz");
    auto r = open_with_index(R"({"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}})");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
    EXPECT_NE(r.error().message.find("b.safetensors: file is only 3 bytes"), std::string::npos)
        << r.error().message;
  }
}

TEST(Safetensors, RefusesTruncatedAndBadHeaderLength) {
  expect_bad("model.safetensors", "", "file is only 0 bytes");
  expect_bad("model.safetensors", std::string("\x10\x00\x00", 3), "file is only 3 bytes");
  expect_bad("model.safetensors", std::string(7, '\0'), "starts with an 8-byte header length");
}

TEST(Safetensors, RefusesHeaderLengthBeyondFileOrAbsurd) {
  std::string good = st_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                              std::string(4, '\0'));
  expect_bad("model.safetensors", good.substr(0, 30), "runs past the end of the file");
  expect_bad("model.safetensors", good.substr(0, good.size() - 2),
             "beyond the end of the data section");
  std::string absurd = good;
  absurd[5] = 0x01;  // header length >= 2^40
  expect_bad("model.safetensors", absurd, "is absurd");
}

TEST(Safetensors, RefusesMalformedJson) {
  expect_bad("model.safetensors", st_bytes(R"({"x": {"dtype": "F32", )", ""), "not valid JSON");
  expect_bad("model.safetensors", st_bytes("[1, 2]", ""), "header JSON is not an object");
}

TEST(Safetensors, RefusesBadFields) {
  const std::string data(16, '\0');
  expect_bad("m.safetensors", st_bytes(R"({"w": {"shape": [4], "data_offsets": [0, 16]}})", data),
             "tensor 'w' has no 'dtype' field");
  expect_bad("m.safetensors",
             st_bytes(R"({"w": {"dtype": "F32", "shape": [4], "offsets": [0, 16]}})", data),
             "tensor 'w' has no 'data_offsets' field");
  expect_bad("m.safetensors", st_bytes(R"({"w": [1]})", data), "tensor 'w' is not a JSON object");
  expect_bad("m.safetensors",
             st_bytes(R"({"w": {"dtype": 3, "shape": [4], "data_offsets": [0, 16]}})", data),
             "dtype that is not a string");
  expect_bad("m.safetensors",
             st_bytes(R"({"w": {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}})", data),
             "shape that is not an array");
  expect_bad("m.safetensors",
             st_bytes(R"({"w": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}})", data),
             "negative or non-integer dimension");
  expect_bad("m.safetensors",
             st_bytes(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0]}})", data),
             "expected [begin, end]");
  expect_bad("m.safetensors",
             st_bytes(R"({"__metadata__": {"a": 1}})", data), "__metadata__ value of 'a'");
}

TEST(Safetensors, RefusesUnknownDtypeAndNegativeDims) {
  const std::string data(16, '\0');
  expect_bad("model.safetensors",
             st_bytes(R"({"w": {"dtype": "F8_E4M3", "shape": [16], "data_offsets": [0, 16]}})",
                      data),
             "tensor 'w' has unknown dtype 'F8_E4M3'");
  expect_bad("model.safetensors",
             st_bytes(R"({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}})", data),
             "tensor 'w' has shape [-4] with a negative");
}

TEST(Safetensors, RefusesBadOffsets) {
  const std::string data(24, '\0');
  expect_bad("model.safetensors",
             st_bytes(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", data),
             "tensor 'w' has data_offsets [8, 4] with end < begin");
  expect_bad("model.safetensors",
             st_bytes(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}})", data),
             "tensor 'w' has data_offsets [16, 32] beyond the end of the data section (24 bytes)");
  expect_bad("model.safetensors",
             st_bytes(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                          "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
                      data),
             "tensor 'b' (bytes 12..20) overlaps tensor 'a' (bytes 0..16)");
  // A hole between tensors is tolerated.
  std::string path = temp_dir("st-hole") + "/model.safetensors";
  write_file(path, st_bytes(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                               "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                            data));
  EXPECT_TRUE(ms::SafetensorsFile::open(path).ok());
}

TEST(Safetensors, RefusesShapeLengthMismatch) {
  std::string dir = temp_dir("st-mismatch");
  std::string path = dir + "/model.safetensors";
  write_file(path, st_bytes(R"({"h.3.attn.c_attn.weight": {"dtype": "F32", "shape": [5, 6],
                                "data_offsets": [0, 100]}})",
                            std::string(120, '\0')));
  auto r = ms::SafetensorsFile::open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
  EXPECT_EQ(r.error().message, path + ": tensor 'h.3.attn.c_attn.weight' has data_offsets "
                                      "[0, 100] but shape [5, 6] x F32 needs 120 bytes");
}

TEST(Safetensors, MissingFileIsBadInput) {
  auto r = ms::SafetensorsFile::open(temp_dir("st-missing") + "/absent.safetensors");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
  EXPECT_NE(r.error().message.find("absent.safetensors: cannot open"), std::string::npos);
}

}  // namespace
