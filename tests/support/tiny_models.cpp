// Tiny in-memory models of each architecture family for hook and forward-pass tests.
#include "tests/support/tiny_models.h"

#include <stdexcept>

#include "core/zoo/zoo_random.h"

namespace ms::test {

ModelConfig tiny_config(const std::string& family) {
  ModelConfig c;
  c.n_layers = 3;
  c.d_model = 32;
  c.n_heads = 4;
  c.n_kv_heads = 4;
  c.d_head = 8;
  c.d_mlp = 64;
  c.d_vocab = 50;
  c.n_ctx = 64;
  if (family == "gpt2" || family == "attn_only") {
    c.model_type = "gpt2";
    c.qkv_bias = c.o_bias = c.mlp_bias = true;
    c.tie_embeddings = true;
    if (family == "attn_only") {
      c.d_mlp = 0;
      c.n_layers = 2;
    }
  } else if (family == "neox") {
    c.model_type = "gpt_neox";
    c.pos = PosKind::kRotary;
    c.rotary_dim = 4;
    c.parallel_attn_mlp = true;
    c.act = ActKind::kGelu;
    c.qkv_bias = c.o_bias = c.mlp_bias = true;
  } else if (family == "llama" || family == "mistral") {
    c.model_type = family;
    c.norm = NormKind::kRmsNorm;
    c.norm_eps = 1e-6;
    c.act = ActKind::kSilu;
    c.gated_mlp = true;
    c.pos = PosKind::kRotary;
    c.rotary_dim = 8;
    c.n_kv_heads = 2;
    if (family == "mistral") c.sliding_window = 3;
  } else {
    throw std::invalid_argument("unknown tiny model family " + family);
  }
  return c;
}

std::unique_ptr<Model> tiny_model(const std::string& family, uint64_t seed) {
  ModelConfig c = tiny_config(family);
  Result<std::unique_ptr<Model>> m = Model::from_weights(c, random_weights(c, seed, 0.3));
  if (!m) throw std::runtime_error(m.error().message);
  return std::move(*m);
}

}  // namespace ms::test
