// Pieces shared by the constructed-model builders (core/zoo_construct_*.cpp): an all-zero GPT-2
// model to fill in, per-head access to the fused qkv / output weights, LayerNorm used as a known
// scaling, and the balance dimension that keeps every residual vector at zero mean.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/model/model.h"

namespace ms::construct {

// A GPT-2 config (learned positions, LayerNorm, gelu_new, biases) over the zoo vocabulary, n_ctx 256.
ModelConfig gpt2_config(int64_t n_layers, int64_t d_model, int64_t n_heads, int64_t d_mlp, bool tied);
constexpr int64_t kCtx = 256;

// Every matrix and bias zero, LayerNorm weights 1; w_u is w_e when tied.
ModelWeights zero_weights(const ModelConfig& c);

// N(0, std^2) entries from a seeded generator, as float32.
at::Tensor normal(at::Generator& gen, std::vector<int64_t> shape, double std);

// Views of one head's rows of w_qkv ([d_head, d_model] each) and columns of w_o ([d_model, d_head]).
// Writing into them writes into the layer's weights.
struct Head {
  at::Tensor q, k, v, o;
};
Head head_view(const ModelConfig& c, LayerWeights& lw, int64_t head);

// LayerNorm as a near-constant scaling. The residual stream carries +c and -c in dims one and
// one_neg and has zero mean everywhere, so LN(x)_i = x_i * sqrt((2c^2 + rest_sq) / (2c^2 + |r|^2))
// for every other dim i (r: x without the pair), within a fraction of a percent of x_i while
// |r|^2 stays near rest_sq. The pair gets weight 0 and LN's bias puts a clean constant 1 in dim
// one, which queries read when they must not depend on the content.
void scaling_norm(at::Tensor& w, at::Tensor& b, int64_t d_model, int64_t one, int64_t one_neg, double c,
                  double rest_sq);

// Row-wise balance for embeddings ([rows, d]): column bal becomes minus the sum of the row's other
// entries, so every row sums to zero.
void balance_rows(at::Tensor m, int64_t bal);
// Column-wise balance for writers into the residual stream ([d, cols], e.g. a head's w_o): row bal
// becomes minus the sum of each column's other entries, so whatever it writes sums to zero.
void balance_columns(at::Tensor m, int64_t bal);

// Mean over the rows of |row|^2, leaving out the given columns (the constant pair).
double mean_sq_norm(const at::Tensor& m, const std::vector<int64_t>& skip);

// Names for the zoo vocabulary ("<bos>", "<delim>", "t2".."t63") and its zoo.json description.
std::string token_name(int32_t id);
nlohmann::json vocabulary_json();
// A number as %g prints it ("12", "0.15"), for the descriptions in zoo.json.
std::string num(double v);
// [[layer, head], ...]
nlohmann::json head_list(const std::vector<std::pair<int, int>>& heads);

// A reproducible prompt of `len` ordinary tokens, <bos> at position 0 and the delimiter at the
// given positions (the check prompts written into zoo.json).
std::vector<int32_t> check_prompt(int64_t len, const std::vector<int64_t>& delim_positions, uint64_t seed);

}  // namespace ms::construct
