// GGUF reader tests: the real stories260K model (metadata, vocabulary, and the token embedding
// checked against llama2.c's independent .bin of the same weights), small files written here with
// F16/BF16 and every block-quantized type (blocks of known codes, quantized random rows), and
// malformed or truncated files that must give errors, never crashes.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/io/gguf.h"
#include "tests/support/ggml_quantize.h"
#include "tests/support/gguf_builder.h"
#include "tests/support/test_support.h"

namespace {

using ms::ErrorCode;
using ms::test::GgufBuilder;
using ms::test::half_to_float;
using ms::test::temp_dir;
using ms::test::write_file;

constexpr uint32_t kTypeF32 = 0, kTypeF16 = 1, kTypeQ8_0 = 8, kTypeQ8_1 = 9, kTypeQ8_K = 15,
                   kTypeIQ2_XS = 17, kTypeBF16 = 30;

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string write_temp(const std::string& bytes, const std::string& name = "model.gguf") {
  std::string path = temp_dir("gguf") + "/" + name;
  write_file(path, bytes);
  return path;
}

std::unique_ptr<ms::GgufFile> open_ok(const std::string& bytes) {
  auto r = ms::GgufFile::open(write_temp(bytes));
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(r.value()) : nullptr;
}

void expect_bad(const std::string& bytes, const std::string& phrase) {
  auto r = ms::GgufFile::open(write_temp(bytes, "broken.gguf"));
  ASSERT_FALSE(r.ok()) << "opened a broken file: expected '" << phrase << "'";
  EXPECT_EQ(r.error().code, ErrorCode::kBadInput);
  EXPECT_NE(r.error().message.find("broken.gguf"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(phrase), std::string::npos) << r.error().message;
}

// Q8_0 blocks: for block b, scale bits kScales[b % n] and q = ((37 b + 11 i) mod 256) - 128.
const std::vector<uint16_t> kScales = {0x3C00, 0x3800, 0x2E66, 0xB400, 0x1400, 0x0200, 0x5A00};
int8_t q_value(int64_t b, int64_t i) { return static_cast<int8_t>((37 * b + 11 * i) % 256 - 128); }
std::string q8_blocks(int64_t n_blocks) {
  std::string out;
  for (int64_t b = 0; b < n_blocks; ++b) {
    GgufBuilder::put<uint16_t>(out, kScales[b % kScales.size()]);
    for (int64_t i = 0; i < 32; ++i) out.push_back(static_cast<char>(q_value(b, i)));
  }
  return out;
}

TEST(Gguf, ReferenceStories260K) {
  MS_REQUIRE_REFERENCE();
  const std::string ref = ms::test::reference_dir();
  auto r = ms::GgufFile::open(ref + "/stories260K-gguf/stories260K.gguf");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ms::GgufFile& f = *r.value();
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.embedding_length"), 64);
  EXPECT_EQ(f.get_int("llama.block_count"), 5);
  EXPECT_EQ(f.get_int("llama.attention.head_count"), 8);
  EXPECT_EQ(f.get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(f.get_int("llama.feed_forward_length"), 172);

  ms::GgufVocab vocab = f.vocab();
  EXPECT_EQ(vocab.model, "llama");
  ASSERT_EQ(vocab.tokens.size(), 512u);
  EXPECT_EQ(vocab.scores.size(), 512u);
  EXPECT_EQ(vocab.tokens[1], "<s>");
  EXPECT_EQ(vocab.special.bos, 1);
  EXPECT_EQ(vocab.special.eos, 2);
  EXPECT_EQ(vocab.special.unk, 0);
  EXPECT_TRUE(vocab.special.add_bos);

  const ms::TensorView* emb = f.find("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dtype, ms::DType::kF32);
  ASSERT_EQ(emb->shape, (std::vector<int64_t>{512, 64}));
  at::Tensor t = ms::to_tensor(*emb, at::kFloat);

  // llama2.c's .bin: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
  // seq_len), then token_embedding_table [vocab, dim] in f32.
  std::string bin = ms::test::read_file(ref + "/stories260K/stories260K.bin");
  int32_t header[7];
  ASSERT_GE(bin.size(), sizeof(header) + 512 * 64 * 4);
  std::memcpy(header, bin.data(), sizeof(header));
  ASSERT_EQ(header[0], 64);
  ASSERT_EQ(std::abs(header[5]), 512);
  at::Tensor expected = at::empty({512, 64}, at::kFloat);
  std::memcpy(expected.data_ptr(), bin.data() + sizeof(header), 512 * 64 * 4);
  EXPECT_TRUE(at::equal(t, expected)) << "max |diff| " << (t - expected).abs().max().item<float>();

  for (const auto& name : f.names()) {  // every tensor converts
    EXPECT_NO_THROW(ms::to_tensor(*f.find(name), at::kFloat)) << name;
  }
}

TEST(Gguf, F16AndBF16TensorsInPyTorchOrder) {
  const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x3555, 0x0001, 0x7BFF, 0x8400};
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC0A0, 0x4049, 0x0001};
  GgufBuilder b;
  b.kv_str("general.architecture", "llama");
  b.tensor("h", {3, 2}, kTypeF16, bytes_of(f16));  // ne [3, 2] -> shape [2, 3]
  b.tensor("b", {4}, kTypeBF16, bytes_of(bf16));
  auto f = open_ok(b.build());
  ASSERT_TRUE(f);
  EXPECT_EQ(f->names(), (std::vector<std::string>{"h", "b"}));
  const ms::TensorView* h = f->find("h");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->shape, (std::vector<int64_t>{2, 3}));
  at::Tensor t = ms::to_tensor(*h, at::kFloat);
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(t[r][c].item<float>(), half_to_float(f16[r * 3 + c])) << r << "," << c;
    }
  }
  EXPECT_TRUE(at::equal(ms::to_tensor(*h, at::kDouble), t.to(at::kDouble)));
  at::Tensor tb = ms::to_tensor(*f->find("b"), at::kFloat);
  for (int i = 0; i < 4; ++i) {
    uint32_t bits = static_cast<uint32_t>(bf16[i]) << 16;
    float want;
    std::memcpy(&want, &bits, 4);
    EXPECT_EQ(tb[i].item<float>(), want) << i;
  }
}

TEST(Gguf, Q8_0IsDequantizedBlockwise) {
  GgufBuilder b;
  b.tensor("small", {64, 3}, kTypeQ8_0, q8_blocks(6));
  b.tensor("big", {128, 1024}, kTypeQ8_0, q8_blocks(4096));  // spans several parallel chunks
  auto f = open_ok(b.build());
  ASSERT_TRUE(f);
  for (const char* name : {"small", "big"}) {
    const ms::TensorView* v = f->find(name);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->dtype, ms::DType::kQ8_0);
    at::Tensor t = ms::to_tensor(*v, at::kFloat);
    ASSERT_EQ(t.dim(), 2);
    EXPECT_EQ(t.size(1), v->shape[1]);
    const float* p = t.data_ptr<float>();
    int64_t mismatches = 0;
    for (int64_t k = 0; k < t.numel(); ++k) {
      const int64_t blk = k / 32, i = k % 32;
      const float d = half_to_float(kScales[blk % kScales.size()]);
      const float want = d * static_cast<float>(q_value(blk, i));
      if (p[k] != want) ++mismatches;
    }
    EXPECT_EQ(mismatches, 0) << name;
    EXPECT_TRUE(at::equal(ms::to_tensor(*v, at::kDouble), t.to(at::kDouble)));
  }
}

TEST(Gguf, CustomAlignmentAndMetadataGetters) {
  GgufBuilder b;
  b.kv_u32("general.alignment", 64);
  b.kv_str("general.name", "tiny");
  b.kv_f32("x.eps", 0.5f);
  b.kv_i32("x.count", -3);
  b.kv_u64("x.big", 1ull << 40);
  b.kv_bool("x.flag", true);
  b.tensor("a", {3}, kTypeF32, bytes_of(std::vector<float>{1, 2, 3}));
  b.tensor("b", {2}, kTypeF32, bytes_of(std::vector<float>{4, 5}));
  auto f = open_ok(b.build(3, 64));
  ASSERT_TRUE(f);
  EXPECT_EQ(ms::to_tensor(*f->find("b"), at::kFloat)[1].item<float>(), 5.0f);
  EXPECT_EQ(f->get_string("general.name"), "tiny");
  EXPECT_EQ(f->get_float("x.eps"), 0.5);
  EXPECT_EQ(f->get_float("x.count"), -3.0);
  EXPECT_EQ(f->get_int("x.count"), -3);
  EXPECT_EQ(f->get_int("x.big"), int64_t{1} << 40);
  EXPECT_EQ(f->get_int("x.missing", 7), 7);
  EXPECT_TRUE(f->get_bool("x.flag", false));
  EXPECT_EQ(f->get_string("x.missing", "fb"), "fb");
  EXPECT_THROW(f->get_int("general.name"), ms::InputError);
  EXPECT_THROW(f->get_string("x.missing"), ms::InputError);
  try {
    f->get_int("general.name");
  } catch (const ms::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'general.name' is a string, expected an integer"),
              std::string::npos)
        << e.what();
  }
}

TEST(Gguf, VocabDefaultsAndGpt2Vocab) {
  GgufBuilder llama;
  llama.kv_str("tokenizer.ggml.model", "llama");
  llama.kv_strs("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  llama.kv_f32s("tokenizer.ggml.scores", {0, 0, 0, -1.5f});
  llama.kv_i32s("tokenizer.ggml.token_type", {2, 3, 3, 1});
  auto f = open_ok(llama.build());
  ASSERT_TRUE(f);
  ms::GgufVocab v = f->vocab();
  EXPECT_EQ(v.pre, "default");
  EXPECT_EQ(v.special.bos, 1);
  EXPECT_EQ(v.special.eos, 2);
  EXPECT_EQ(v.special.unk, 0);
  EXPECT_EQ(v.special.pad, -1);
  EXPECT_TRUE(v.special.add_bos);
  EXPECT_FALSE(v.special.add_eos);
  EXPECT_TRUE(v.add_space_prefix);
  EXPECT_EQ(v.scores[3], -1.5f);
  EXPECT_EQ(v.token_types, (std::vector<int32_t>{2, 3, 3, 1}));

  GgufBuilder gpt2;
  gpt2.kv_str("tokenizer.ggml.model", "gpt2");
  gpt2.kv_str("tokenizer.ggml.pre", "qwen2");
  gpt2.kv_strs("tokenizer.ggml.tokens", {"a", "b", "ab", "<|end|>"});
  gpt2.kv_strs("tokenizer.ggml.merges", {"a b"});
  gpt2.kv_u32("tokenizer.ggml.eos_token_id", 3);
  gpt2.kv_u32("tokenizer.ggml.padding_token_id", 3);
  gpt2.kv_u32("tokenizer.ggml.bos_token_id", 99);  // out of range: ignored, as llama.cpp does
  gpt2.kv_bool("tokenizer.ggml.add_eos_token", true);
  f = open_ok(gpt2.build());
  ASSERT_TRUE(f);
  v = f->vocab();
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "qwen2");
  EXPECT_EQ(v.merges, std::vector<std::string>{"a b"});
  EXPECT_TRUE(v.scores.empty());
  EXPECT_EQ(v.special.bos, -1);
  EXPECT_EQ(v.special.eos, 3);
  EXPECT_EQ(v.special.pad, 3);
  EXPECT_FALSE(v.special.add_bos);
  EXPECT_TRUE(v.special.add_eos);
  EXPECT_FALSE(v.add_space_prefix);

  GgufBuilder none;
  none.kv_str("general.architecture", "llama");
  f = open_ok(none.build());
  ASSERT_TRUE(f);
  EXPECT_THROW(f->vocab(), ms::InputError);

  GgufBuilder bad;
  bad.kv_str("tokenizer.ggml.model", "llama");
  bad.kv_strs("tokenizer.ggml.tokens", {"a", "b"});
  bad.kv_f32s("tokenizer.ggml.scores", {0});
  f = open_ok(bad.build());
  ASSERT_TRUE(f);
  EXPECT_THROW(f->vocab(), ms::InputError);
}

TEST(Gguf, RefusesUnsupportedTypesByName) {
  for (auto [type, name] : {std::pair<uint32_t, const char*>{kTypeQ8_1, "Q8_1"},
                            {kTypeQ8_K, "Q8_K"}, {kTypeIQ2_XS, "IQ2_XS"}, {99, "unknown"}}) {
    GgufBuilder b;
    b.tensor("blk.0.ffn_up.weight", {256, 2}, type, std::string(1024, '\0'));
    expect_bad(b.build(), std::string("tensor 'blk.0.ffn_up.weight' has ggml type ") + name);
    expect_bad(b.build(), "only F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, "
                          "Q5_K, Q6_K are supported. Re-quantize the model");
  }
}

TEST(Gguf, RefusesBadMagicAndVersions) {
  GgufBuilder b;
  b.kv_str("general.architecture", "llama");
  std::string good = b.build();
  std::string bad = good;
  bad[3] = 'L';
  expect_bad(bad, "not a GGUF file");
  expect_bad("GG", "not a GGUF file");
  expect_bad(b.build(1), "GGUF version 1 is not supported");
  expect_bad(b.build(4), "GGUF version 4 is not supported");
  expect_bad(b.build(0x03000000), "big-endian");
  EXPECT_TRUE(open_ok(b.build(2)));
}

TEST(Gguf, TruncatedFilesGiveErrorsAtEveryCut) {
  GgufBuilder b;
  b.kv_str("general.architecture", "llama");
  b.kv_strs("tokenizer.ggml.tokens", {"<unk>", "<s>", "hello"});
  b.kv_f32s("tokenizer.ggml.scores", {0.f, -1.f, -2.f});
  b.kv_bool("tokenizer.ggml.add_bos_token", true);
  b.tensor("w", {4, 2}, kTypeF32, std::string(32, '\1'));
  b.tensor("q", {32}, kTypeQ8_0, q8_blocks(1));  // the last tensor ends the file
  const std::string good = b.build();
  ASSERT_TRUE(open_ok(good));
  const std::string path = temp_dir("gguf-cut") + "/cut.gguf";
  for (size_t cut = 0; cut < good.size(); ++cut) {
    std::remove(path.c_str());
    write_file(path, good.substr(0, cut));
    auto r = ms::GgufFile::open(path);
    ASSERT_FALSE(r.ok()) << "a file cut at " << cut << " bytes opened";
    EXPECT_EQ(r.error().code, ErrorCode::kBadInput) << r.error().message;
    EXPECT_NE(r.error().message.find("cut.gguf"), std::string::npos) << r.error().message;
  }
  expect_bad(good.substr(0, 40), "truncated");
  expect_bad(good.substr(0, good.size() - 1), "runs past the end of the file");
}

TEST(Gguf, RandomCorruptionNeverCrashes) {
  GgufBuilder b;
  b.kv_str("tokenizer.ggml.model", "llama");
  b.kv_strs("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "x"});
  b.kv_f32s("tokenizer.ggml.scores", {0.f, 0.f, 0.f, -1.f});
  b.kv_u32("tokenizer.ggml.bos_token_id", 1);
  b.tensor("w", {4, 2}, kTypeF16, std::string(16, '\1'));
  b.tensor("q", {32, 2}, kTypeQ8_0, q8_blocks(2));
  b.tensor("k", {256}, ms::test::kGgmlQ4_K, std::string(144, '\x5A'));  // f16 scales 203.25
  b.tensor("k6", {256}, ms::test::kGgmlQ6_K, std::string(210, '\x3A'));
  const std::string good = b.build();
  const std::string path = temp_dir("gguf-fuzz") + "/fuzz.gguf";
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  int opened = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bytes = good;
    const int n_flips = 1 + next() % 4;
    for (int k = 0; k < n_flips; ++k) {
      bytes[next() % bytes.size()] = static_cast<char>(next() & 0xFF);
    }
    std::remove(path.c_str());  // a fresh file: rewriting a truncated one makes ext4 flush
    write_file(path, bytes);
    auto r = ms::GgufFile::open(path);
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kBadInput) << r.error().message;
      continue;
    }
    ++opened;
    for (const auto& name : r.value()->names()) ms::to_tensor(*r.value()->find(name), at::kFloat);
    try {
      r.value()->vocab();
    } catch (const ms::InputError&) {
    }
  }
  EXPECT_GT(opened, 0);  // flips in tensor data leave the file valid
}

TEST(Gguf, RefusesAbsurdCountsAndLengths) {
  GgufBuilder b;
  b.kv_str("general.architecture", "llama");
  std::string bytes = b.build();
  std::string many_kv = bytes;
  uint64_t huge = uint64_t{1} << 40;
  std::memcpy(&many_kv[16], &huge, 8);
  expect_bad(many_kv, "metadata entries, more than the file can hold");
  std::string many_tensors = bytes;
  std::memcpy(&many_tensors[8], &huge, 8);
  expect_bad(many_tensors, "tensors, more than the file can hold");

  std::string arr;  // an array of u8 claiming 2^50 elements
  GgufBuilder::put<uint32_t>(arr, 9);
  GgufBuilder::put<uint32_t>(arr, 0);
  GgufBuilder::put<uint64_t>(arr, uint64_t{1} << 50);
  GgufBuilder c;
  c.kv_raw("x.arr", arr);
  expect_bad(c.build(), "array elements");

  std::string str;  // a string claiming 2^40 bytes
  GgufBuilder::put<uint32_t>(str, 8);
  GgufBuilder::put<uint64_t>(str, huge);
  GgufBuilder d;
  d.kv_raw("x.str", str);
  expect_bad(d.build(), "claims 1099511627776 bytes");

  GgufBuilder e;
  e.kv_raw("x.bad", std::string("\x0D\0\0\0", 4));
  expect_bad(e.build(), "unknown value type 13");

  GgufBuilder dup;
  dup.kv_u32("x.a", 1);
  dup.kv_u32("x.a", 2);
  expect_bad(dup.build(), "'x.a' appears twice");
}

TEST(Gguf, RefusesBadTensorInfos) {
  const std::string f32x8(32, '\0');
  {
    GgufBuilder b;
    b.tensor("w", {1, 1, 1, 1, 8}, kTypeF32, f32x8);
    expect_bad(b.build(), "tensor 'w' has 5 dimensions");
  }
  {
    GgufBuilder b;
    b.tensor("w", {8, 0}, kTypeF32, f32x8);
    expect_bad(b.build(), "tensor 'w' has dimension 1 of size 0");
  }
  {
    GgufBuilder b;
    b.tensor("w", {8}, kTypeF32, f32x8, 4);
    expect_bad(b.build(), "not a multiple of the alignment 32");
  }
  {
    GgufBuilder b;
    b.tensor("a", {16}, kTypeF32, std::string(64, '\0'), 0);
    b.tensor("b", {8}, kTypeF32, f32x8, 32);
    expect_bad(b.build(), "overlaps tensor");
  }
  {
    GgufBuilder b;
    b.tensor("w", {48}, kTypeQ8_0, std::string(51, '\0'));
    expect_bad(b.build(), "is Q8_0 but its row length 48 is not a multiple of Q8_0's block size 32");
  }
  {
    GgufBuilder b;
    b.kv_u32("general.alignment", 24);
    expect_bad(b.build(), "general.alignment must be a positive power of two");
  }
}

}  // namespace
