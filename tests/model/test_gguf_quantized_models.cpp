// Quantized GGUF models against their F32 file: a random Llama whose rows fit every block size
// (d_model 256, d_mlp 512) and the real stories260K, re-quantized by the tests' own quantizer
// (tests/support/ggml_quantize) as llama-quantize would (2-D weights only, norms stay F32), then
// loaded by Model::load; the logits must stay within the quantization's error of the F32 logits.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <random>

#include "core/io/gguf.h"
#include "core/model/model.h"
#include "tests/support/ggml_quantize.h"
#include "tests/support/gguf_builder.h"
#include "tests/support/numerics.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

using test::quant_spec;

// The type llama-quantize gives a 2-D weight of row length ne0 when asked for `want`: a K-quant
// that does not divide the row falls back (llama-quant.cpp: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K ->
// Q8_0, Q2_K/Q3_K -> IQ4_NL, for which Q4_0 stands in here: this reader does not take IQ types),
// and a type that still does not divide it falls back to F16.
uint32_t type_for(uint32_t want, int64_t ne0) {
  uint32_t t = want;
  if (ne0 % quant_spec(t).block != 0) {
    switch (t) {
      case test::kGgmlQ4_K: t = test::kGgmlQ5_0; break;
      case test::kGgmlQ5_K: t = test::kGgmlQ5_1; break;
      case test::kGgmlQ6_K: t = test::kGgmlQ8_0; break;
      case test::kGgmlQ2_K:
      case test::kGgmlQ3_K: t = test::kGgmlQ4_0; break;
      default: break;
    }
  }
  return ne0 % quant_spec(t).block == 0 ? t : test::kGgmlF16;
}

struct Quantized {
  std::string path;
  std::string types;      // "Q8_0 x 32, F16 x 5", for the log
  double weight_rel = 0;  // largest ||W_q - W|| / ||W|| (Frobenius) over the quantized tensors
};

// Writes src's metadata and tensors with every 2-D weight quantized to (or falling back from)
// `want`; 1-D tensors (norms) stay F32. The weights' error is measured on what the quantizer's
// codes mean (code_value), not on what the reader makes of them.
Quantized requantize(const GgufFile& src, uint32_t want, const std::string& path) {
  test::GgufBuilder b;
  b.kv_copy(src);
  std::map<std::string, int> counts;
  Quantized q;
  q.path = path;
  for (const std::string& name : src.names()) {
    const TensorView* v = src.find(name);
    at::Tensor w = to_tensor(*v, at::kFloat).contiguous();
    std::vector<uint64_t> ne(v->shape.rbegin(), v->shape.rend());
    const float* x = w.data_ptr<float>();
    if (v->shape.size() < 2) {
      b.tensor(name, ne, test::kGgmlF32, std::string(reinterpret_cast<const char*>(x), w.numel() * 4));
      continue;
    }
    const uint32_t t = type_for(want, static_cast<int64_t>(ne[0]));
    std::string data;
    std::vector<double> meant(static_cast<size_t>(w.numel()));
    if (t == test::kGgmlF16) {
      for (int64_t i = 0; i < w.numel(); ++i) {
        const uint16_t h = test::float_to_half(x[i]);
        test::GgufBuilder::put(data, h);
        meant[static_cast<size_t>(i)] = test::half_to_float(h);
      }
      ++counts["F16"];
    } else {
      std::vector<test::BlockCodes> codes;
      data = test::quantize_row(t, x, w.numel(), &codes);
      const int block = quant_spec(t).block;
      for (int64_t i = 0; i < w.numel(); ++i) {
        meant[static_cast<size_t>(i)] = test::code_value(t, codes[static_cast<size_t>(i / block)], static_cast<int>(i % block));
      }
      ++counts[quant_spec(t).name];
    }
    double err2 = 0, norm2 = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
      err2 += (meant[static_cast<size_t>(i)] - x[i]) * (meant[static_cast<size_t>(i)] - x[i]);
      norm2 += static_cast<double>(x[i]) * x[i];
    }
    q.weight_rel = std::max(q.weight_rel, std::sqrt(err2 / norm2));
    b.tensor(name, ne, t, data);
  }
  test::write_file(path, b.build(3, static_cast<uint64_t>(src.get_int("general.alignment", 32))));
  for (const auto& [type, n] : counts) q.types += (q.types.empty() ? "" : ", ") + type + " x " + std::to_string(n);
  return q;
}

// A Llama of random weights (d_model 256, d_mlp 512, 4 heads of 64, 2 KV heads, 2 layers,
// vocabulary 256, untied), every row length a multiple of 256, written as an F32 GGUF. Matrices
// have std 1/sqrt(fan_in), so every layer changes the residual stream by about its own size.
std::string random_llama_gguf(const std::string& path) {
  const int64_t d = 256, mlp = 512, heads = 4, kv = 2, dh = 64, layers = 2, vocab = 256;
  std::mt19937 rng(14);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  test::GgufBuilder b;
  b.kv_str("general.architecture", "llama");
  b.kv_u32("llama.embedding_length", d);
  b.kv_u32("llama.block_count", layers);
  b.kv_u32("llama.attention.head_count", heads);
  b.kv_u32("llama.attention.head_count_kv", kv);
  b.kv_u32("llama.feed_forward_length", mlp);
  b.kv_u32("llama.context_length", 64);
  b.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  auto add = [&](const std::string& name, int64_t ne0, int64_t ne1, float std, float mean = 0) {
    std::vector<float> w(static_cast<size_t>(ne0 * ne1));
    for (float& x : w) x = mean + std * normal(rng);
    std::vector<uint64_t> ne = {static_cast<uint64_t>(ne0)};
    if (ne1 > 1) ne.push_back(static_cast<uint64_t>(ne1));
    b.tensor(name, ne, test::kGgmlF32, std::string(reinterpret_cast<const char*>(w.data()), w.size() * 4));
  };
  add("token_embd.weight", d, vocab, 1.0f);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const float in_std = 1.0f / std::sqrt(static_cast<float>(d));
    add(p + "attn_norm.weight", d, 1, 0.1f, 1.0f);
    add(p + "attn_q.weight", d, heads * dh, in_std);
    add(p + "attn_k.weight", d, kv * dh, in_std);
    add(p + "attn_v.weight", d, kv * dh, in_std);
    add(p + "attn_output.weight", heads * dh, d, 1.0f / std::sqrt(static_cast<float>(heads * dh)));
    add(p + "ffn_norm.weight", d, 1, 0.1f, 1.0f);
    add(p + "ffn_gate.weight", d, mlp, in_std);
    add(p + "ffn_up.weight", d, mlp, in_std);
    add(p + "ffn_down.weight", mlp, d, 1.0f / std::sqrt(static_cast<float>(mlp)));
  }
  add("output_norm.weight", d, 1, 0.1f, 1.0f);
  add("output.weight", d, vocab, 1.0f / std::sqrt(static_cast<float>(d)));
  test::write_file(path, b.build());
  return path;
}

at::Tensor logits_of(const std::string& path, const std::vector<int32_t>& ids) {
  c10::InferenceMode guard;
  Result<std::unique_ptr<Model>> m = Model::load(path);
  if (!m) throw std::runtime_error(m.error().message);
  return (*m)->forward((*m)->tokens_tensor(ids))[0].to(at::kDouble);  // (T, vocab)
}

// The logits' largest error relative to their scale may be kLogitsPerWeightError times the
// weights' relative error. A forward pass is nearly linear in a small perturbation of its
// weights: a matrix perturbed by a relative e moves its output by about e of its size, in a
// random direction; the residual sum and RMSNorm keep the perturbations of successive matrices
// from compounding, so the logits move by a few e, and their largest entry (of T x vocab) by
// more than the typical one. Measured over all ten types on both models (e from 0.5% for Q8_0
// to 36% for Q2_K): 1.7 to 3.2 e. 6 e leaves a margin of about 2. A misread block (a wrong
// nibble order, scale or offset) moves its weights by about their own size, far beyond it.
constexpr double kLogitsPerWeightError = 6.0;

void check_model(const std::string& what, const std::string& f32_path, const std::vector<int32_t>& ids,
                 const std::vector<uint32_t>& types) {
  const at::Tensor ref = logits_of(f32_path, ids);
  auto f32 = GgufFile::open(f32_path);
  ASSERT_TRUE(f32.ok()) << f32.error().message;
  for (uint32_t type : types) {
    const std::string name = quant_spec(type).name;
    Quantized q = requantize(*f32.value(), type, test::temp_dir("gguf-quant-model") + "/" + name + ".gguf");
    const at::Tensor got = logits_of(q.path, ids);
    const test::Closeness cl = test::closeness(got, ref);
    const double tol = kLogitsPerWeightError * q.weight_rel;
    std::printf("numeric: %s as %s (%s): weights' relative error %.4f, logits' max error %.4f of their "
                "scale %.3f (%.2f x the weights' error; tolerance %.4f)\n",
                what.c_str(), name.c_str(), q.types.c_str(), q.weight_rel, cl.rel(), cl.scale,
                cl.rel() / q.weight_rel, tol);
    EXPECT_TRUE(test::close_rel(what + " logits as " + name + " vs F32", got, ref, tol));
    EXPECT_GT(cl.rel(), 0.0) << "quantization changed nothing: was the file quantized?";
  }
}

TEST(GgufQuantizedModels, RandomLlamaQ8_0Q6_KQ4_KAndTheRestWithinTheirError) {
  const std::string f32 = random_llama_gguf(test::temp_dir("gguf-random-llama") + "/f32.gguf");
  std::vector<int32_t> ids;
  for (int i = 0; i < 16; ++i) ids.push_back((37 * i + 11) % 256);
  // Q8_0, Q6_K and Q4_K are what people download; the others run too. Q2_K's and Q3_K's errors
  // (weights 36% and 21% off without llama.cpp's importance matrix) make their bound loose.
  check_model("random llama", f32, ids,
              {test::kGgmlQ8_0, test::kGgmlQ6_K, test::kGgmlQ4_K, test::kGgmlQ5_K, test::kGgmlQ3_K,
               test::kGgmlQ2_K, test::kGgmlQ5_1, test::kGgmlQ5_0, test::kGgmlQ4_1, test::kGgmlQ4_0});
}

TEST(GgufQuantizedModels, Stories260KRequantizedWithinTheirError) {
  MS_REQUIRE_REFERENCE();
  const std::string f32 = test::reference_dir() + "/stories260K-gguf/stories260K.gguf";
  // The first 16 tokens of run.c's greedy story from BOS (what test_stories260k checks).
  const nlohmann::json data =
      nlohmann::json::parse(test::read_file(test::reference_dir() + "/stories260K/reference_logits_run_c.json"));
  std::vector<int32_t> ids = data["greedy_from_bos_ids"].get<std::vector<int32_t>>();
  ids.resize(16);
  // Row lengths are 64 (d_model) and 172 (d_mlp): no K-quant divides them, so Q6_K falls back
  // to Q8_0 and Q4_K to Q5_0 as llama-quantize does, and ffn_down (rows of 172, not a multiple
  // of 32) to F16.
  check_model("stories260K", f32, ids, {test::kGgmlQ8_0, test::kGgmlQ6_K, test::kGgmlQ4_K});
}

}  // namespace
}  // namespace ms
