// Synthetic but realistic analysis results for the storage and report tests (there are no
// analyses yet): head scores for sinks / retrieval / induction / DLA, an attention pattern with
// token labels, a patching grid, tensors of every dtype, a small circuit.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <string>
#include <vector>

#include "storage/database.h"

namespace ms::test {

inline ModelInfo demo_model(const std::string& hash = "sha256:0123abcd", int n_layers = 4, int n_heads = 8) {
  ModelInfo m;
  m.path = "/models/tiny-gpt2";
  m.architecture = "gpt2";
  m.config_json = "{\"model_type\":\"gpt2\",\"n_layers\":" + std::to_string(n_layers) +
                  ",\"n_heads\":" + std::to_string(n_heads) + ",\"d_model\":64}";
  m.content_hash = hash;
  m.n_params = 1234567;
  return m;
}

// values[l * n_heads + h] = a deterministic function of (l, h, seed) in [0, 1), with head
// (1, 2) standing out when it exists.
inline HeadScores demo_scores(const std::string& metric, int n_layers, int n_heads, double seed, bool is_signed = false) {
  HeadScores s{metric, n_layers, n_heads, {}};
  for (int l = 0; l < n_layers; ++l)
    for (int h = 0; h < n_heads; ++h) {
      double v = std::fmod(0.6180339887 * (l * n_heads + h + 1) * (seed + 1.0), 1.0) * 0.5;
      if (l == 1 && h == 2) v = 0.97;
      if (is_signed) v = 2.0 * v - 0.6;
      s.values.push_back(v);
    }
  return s;
}

inline InputRecord demo_input(int index, const std::string& text, int n_tokens) {
  InputRecord in;
  in.index = index;
  in.text = text;
  for (int i = 0; i < n_tokens; ++i) {
    in.token_ids.push_back(100 + i * 7);
    in.tokens.push_back(i == 0 ? "<|endoftext|>" : (i % 3 == 0 ? " the" : " tok" + std::to_string(i)));
  }
  return in;
}

// A causal attention pattern [T, T] whose rows sum to 1, with a sink on position 0.
inline at::Tensor demo_attention(int T) {
  at::Tensor a = at::zeros({T, T}, at::kFloat);
  for (int q = 0; q < T; ++q) {
    float sink = q == 0 ? 1.0f : 0.6f;
    a[q][0] = sink;
    for (int k = 1; k <= q; ++k) a[q][k] = (1.0f - sink) / static_cast<float>(q);
  }
  return a;
}

inline Circuit demo_circuit() {
  Circuit c;
  c.name = "ioi";
  c.nodes = {{"embed", "embed", -1, -1, 0.0},  {"a0.1", "head", 0, 1, 0.4}, {"a1.2", "head", 1, 2, 0.9},
             {"m1", "mlp", 1, -1, 0.2},        {"a2.3", "head", 2, 3, -0.3}, {"logits", "logits", 4, -1, 1.0}};
  c.edges = {{0, 1, 0.5}, {1, 2, 0.8}, {0, 3, 0.1}, {2, 4, -0.4}, {3, 4, 0.2}, {4, 5, 0.7}, {2, 5, 0.9}};
  c.meta_json = "{\"metric\":\"logit_diff\"}";
  return c;
}

// A complete run's results: 4 metrics, 2 inputs, attention + grid + dtype tensors, a circuit.
inline RunResults demo_results(int n_layers = 4, int n_heads = 8, double seed = 0,
                               const std::string& prompt = "When Mary and John went to the store, John gave a drink to") {
  RunResults r;
  r.inputs.push_back(demo_input(0, prompt, 10));
  r.inputs.push_back(demo_input(1, "The cat sat on the mat. The cat sat on the", 12));
  r.scores.push_back(demo_scores("sink_rate", n_layers, n_heads, seed));
  r.scores.push_back(demo_scores("retrieval_score", n_layers, n_heads, seed + 1));
  r.scores.push_back(demo_scores("induction_score", n_layers, n_heads, seed + 2));
  r.scores.push_back(demo_scores("dla", n_layers, n_heads, seed + 3, true));
  r.tensors.push_back({"attn.L1.H2", demo_attention(10), "{\"kind\":\"attention\",\"input\":0,\"layer\":1,\"head\":2}"});
  at::Tensor grid = at::linspace(-1.0, 1.0, n_layers * n_heads, at::kFloat).reshape({n_layers, n_heads});
  r.tensors.push_back({"patch.grid", grid, "{\"kind\":\"attribution\",\"rows\":\"layer\",\"cols\":\"head\"}"});
  r.circuits.push_back(demo_circuit());
  return r;
}

// A run spec with a resume key (batch items).
inline RunSpec keyed_spec(const std::string& kind, const std::string& resume_key) {
  RunSpec s(kind);
  s.resume_key = resume_key;
  return s;
}

inline RunSpec demo_spec(int64_t model_id, const std::string& kind = "sinks") {
  RunSpec s;
  s.kind = kind;
  s.model_id = model_id;
  s.params_json = "{\"threshold\":0.3,\"prompts\":2}";
  s.command = shell_join({"mechscope", kind, "--model", "/models/tiny-gpt2", "--text", "When Mary and John"});
  s.label = "demo";
  return s;
}

}  // namespace ms::test
