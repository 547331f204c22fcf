// The batch registry (the list of analysis adapters) and the estimates they share.
#include "app/batch/batch_analyses.h"

#include <algorithm>

namespace ms::app::batch {

std::vector<ParamSpec> params_from_spec(const AnalysisSpec& spec) {
  std::vector<ParamSpec> out;
  for (const ParamDecl& d : spec.params)
    if (d.applies(kInBatch)) out.push_back(d);
  return out;
}

std::function<std::string(const nlohmann::json&, const ModelConfig&, std::string*)> check_from_spec(const AnalysisSpec& spec) {
  return [&spec](const nlohmann::json& p, const ModelConfig& c, std::string* param) {
    nlohmann::json q = p;
    return complete_params(spec, kInBatch, q, &c, param);
  };
}

Analysis analysis_from_spec(const AnalysisSpec& spec) {
  Analysis a;
  a.kind = spec.kind;
  a.summary = spec.summary;
  a.uses_prompts = spec.uses_prompts;
  a.params = params_from_spec(spec);
  a.check = check_from_spec(spec);
  return a;
}

const std::vector<Analysis>& registry() {
  // One line per analysis kind.
  static const std::vector<Analysis> kAll = {sinks_analysis(), retrieval_analysis(), heads_analysis(),
                                             patch_analysis(), circuit_analysis(), sae_train_analysis(),
                                             sae_features_analysis(), sae_heads_analysis(), sae_circuit_analysis()};
  return kAll;
}

const Analysis* find_analysis(const std::string& kind) {
  for (const Analysis& a : registry())
    if (a.kind == kind) return &a;
  return nullptr;
}

double forward_activation_bytes(const ModelConfig& c, int64_t tokens) {
  const double t = static_cast<double>(tokens);
  const double resid = 8 * t * static_cast<double>(c.d_model);  // residual stream, norms, attention in/out
  const double qkv = t * static_cast<double>(c.q_dim() + 2 * c.kv_dim());
  const double mlp = 3 * t * static_cast<double>(std::max<int64_t>(c.d_mlp, 1));
  const double scores = 2 * static_cast<double>(c.n_heads) * t * t;  // one layer's scores and pattern
  const double kv = 2 * static_cast<double>(c.n_layers) * t * static_cast<double>(c.kv_dim());  // the KV cache
  const double logits = t * static_cast<double>(c.d_vocab);
  return 4 * (resid + qkv + mlp + scores + kv + logits);
}

double forward_flops(const ModelConfig& c, int64_t n_params, int64_t t) {
  const double embed = static_cast<double>(c.d_vocab) * static_cast<double>(c.d_model);
  const double dense = 2.0 * (static_cast<double>(n_params) - embed) * static_cast<double>(t);
  const double unembed = 2.0 * embed * static_cast<double>(t);
  const double attn = 4.0 * static_cast<double>(c.n_layers) * static_cast<double>(c.q_dim()) * static_cast<double>(t) *
                      static_cast<double>(t) / 2.0;
  return std::max(0.0, dense) + unembed + attn;
}

}  // namespace ms::app::batch
