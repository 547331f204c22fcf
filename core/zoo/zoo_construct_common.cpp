// Shared pieces of the constructed-model builders: the zero GPT-2 model, head views, LayerNorm as
// a known scaling, balance dimensions, the vocabulary and reproducible check prompts.
#include "core/zoo/zoo_construct_common.h"

#include <cmath>
#include <cstdio>
#include <random>

#include "core/zoo/zoo_construct.h"

namespace ms::construct {

ModelConfig gpt2_config(int64_t n_layers, int64_t d_model, int64_t n_heads, int64_t d_mlp, bool tied) {
  ModelConfig c;
  c.model_type = "gpt2";
  c.n_layers = n_layers;
  c.d_model = d_model;
  c.n_heads = n_heads;
  c.n_kv_heads = n_heads;
  c.d_head = d_model / n_heads;
  c.d_mlp = d_mlp;
  c.d_vocab = kZooVocab;
  c.n_ctx = kCtx;
  c.norm = NormKind::kLayerNorm;
  c.norm_eps = 1e-5;
  c.act = ActKind::kGeluNew;
  c.pos = PosKind::kLearned;
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  c.tie_embeddings = tied;
  c.bos_token_id = kZooBos;
  return c;
}

ModelWeights zero_weights(const ModelConfig& c) {
  auto zeros = [](std::vector<int64_t> shape) { return at::zeros(shape, at::kFloat); };
  const int64_t d = c.d_model;
  ModelWeights w;
  w.w_e = zeros({c.d_vocab, d});
  w.w_pos = zeros({c.n_ctx, d});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights lw;
    lw.ln1_w = at::ones({d});
    lw.ln1_b = zeros({d});
    lw.w_qkv = zeros({c.q_dim() + 2 * c.kv_dim(), d});
    lw.b_qkv = zeros({c.q_dim() + 2 * c.kv_dim()});
    lw.w_o = zeros({d, c.q_dim()});
    lw.b_o = zeros({d});
    if (!c.attn_only()) {
      lw.ln2_w = at::ones({d});
      lw.ln2_b = zeros({d});
      lw.w_in = zeros({c.d_mlp, d});
      lw.b_in = zeros({c.d_mlp});
      lw.w_out = zeros({d, c.d_mlp});
      lw.b_out = zeros({d});
    }
    w.layers.push_back(std::move(lw));
  }
  w.ln_f_w = at::ones({d});
  w.ln_f_b = zeros({d});
  w.w_u = c.tie_embeddings ? w.w_e : zeros({c.d_vocab, d});
  return w;
}

at::Tensor normal(at::Generator& gen, std::vector<int64_t> shape, double std) {
  return at::normal(0.0, std, shape, gen, at::TensorOptions().dtype(at::kFloat));
}

Head head_view(const ModelConfig& c, LayerWeights& lw, int64_t head) {
  const int64_t dh = c.d_head, qd = c.q_dim(), kvd = c.kv_dim();
  Head h;
  h.q = lw.w_qkv.narrow(0, head * dh, dh);
  h.k = lw.w_qkv.narrow(0, qd + head * dh, dh);
  h.v = lw.w_qkv.narrow(0, qd + kvd + head * dh, dh);
  h.o = lw.w_o.narrow(1, head * dh, dh);
  return h;
}

void scaling_norm(at::Tensor& w, at::Tensor& b, int64_t d_model, int64_t one, int64_t one_neg, double c,
                  double rest_sq) {
  w.fill_(std::sqrt((2.0 * c * c + rest_sq) / static_cast<double>(d_model)));
  w[one].fill_(0.0);
  w[one_neg].fill_(0.0);
  b.zero_();
  b[one].fill_(1.0);
}

void balance_rows(at::Tensor m, int64_t bal) {
  m.select(1, bal).zero_();
  m.select(1, bal).copy_(-m.sum(1));
}

void balance_columns(at::Tensor m, int64_t bal) {
  m.select(0, bal).zero_();
  m.select(0, bal).copy_(-m.sum(0));
}

double mean_sq_norm(const at::Tensor& m, const std::vector<int64_t>& skip) {
  at::Tensor x = m.clone();
  for (int64_t s : skip) x.select(1, s).zero_();
  return x.pow(2).sum(1).mean().item<double>();
}

std::string token_name(int32_t id) {
  if (id == kZooBos) return "<bos>";
  if (id == kZooDelim) return "<delim>";
  return "t" + std::to_string(id);
}

nlohmann::json vocabulary_json() {
  return {{"size", kZooVocab},
          {"bos", {{"id", kZooBos}, {"token", token_name(kZooBos)}}},
          {"delimiter", {{"id", kZooDelim}, {"token", token_name(kZooDelim)}}},
          {"ordinary", {{"first", kZooFirstOrdinary}, {"last", kZooVocab - 1}, {"token", "t<id>"}}},
          {"tokenizer", "none: token ids are given directly (mechscope forward --tokens)"}};
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

nlohmann::json head_list(const std::vector<std::pair<int, int>>& heads) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [l, h] : heads) out.push_back({l, h});
  return out;
}

std::vector<int32_t> check_prompt(int64_t len, const std::vector<int64_t>& delim_positions, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> tok(kZooFirstOrdinary, static_cast<int32_t>(kZooVocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(len));
  ids[0] = kZooBos;
  for (int64_t i = 1; i < len; ++i) ids[static_cast<size_t>(i)] = tok(rng);
  for (int64_t p : delim_positions) ids[static_cast<size_t>(p)] = kZooDelim;
  return ids;
}

}  // namespace ms::construct
