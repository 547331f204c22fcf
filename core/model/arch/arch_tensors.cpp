// The table's tensor side: names with layer indices, which tensors a config has, canonical and
// stored shapes, the declared layout conversions (both ways), and the canonical weight slots.
#include <ATen/ATen.h>

#include <algorithm>

#include "core/base/result.h"
#include "core/model/arch/arch_spec.h"
#include "core/model/model.h"

namespace ms {

bool is_layer_slot(Slot s) { return s >= Slot::kLn1W; }

std::string tensor_name(const char* pattern, int64_t layer) {
  std::string s(pattern);
  size_t at = s.find("{L}");
  if (at != std::string::npos) s.replace(at, 3, std::to_string(layer));
  return s;
}

bool tensor_present(When w, const ModelConfig& c) {
  switch (w) {
    case When::kAlways: return true;
    case When::kQkvBias: return c.qkv_bias;
    case When::kOBias: return c.o_bias;
    case When::kMlpBias: return c.mlp_bias;
    case When::kUntied: return !c.tie_embeddings;
  }
  return false;
}

void for_each_tensor(const ArchSpec& a, int64_t n_layers,
                     const std::function<void(const TensorSpec&, int64_t)>& fn) {
  const std::vector<TensorSpec>& t = a.tensors;
  size_t i = 0;
  while (i < t.size()) {
    if (!is_layer_slot(t[i].slot)) {
      fn(t[i++], -1);
      continue;
    }
    size_t end = i;
    while (end < t.size() && is_layer_slot(t[end].slot)) ++end;
    for (int64_t l = 0; l < n_layers; ++l)
      for (size_t k = i; k < end; ++k) fn(t[k], l);
    i = end;
  }
}

std::pair<int64_t, int64_t> part_rows(Slot s, Part p, const ModelConfig& c) {
  const int64_t q = c.q_dim(), kv = c.kv_dim(), f = c.d_mlp;
  switch (p) {
    case Part::kQ: return {0, q};
    case Part::kK: return {q, kv};
    case Part::kV: return {q + kv, kv};
    case Part::kGate: return {0, f};
    case Part::kUp: return {f, f};
    case Part::kAll: break;
  }
  if (s == Slot::kQkvW || s == Slot::kQkvB) return {0, q + 2 * kv};
  return {0, c.gated_mlp ? 2 * f : f};  // kInW, kInB
}

std::vector<int64_t> canonical_shape(Slot s, Part p, const ModelConfig& c) {
  const int64_t d = c.d_model;
  switch (s) {
    case Slot::kEmbed: case Slot::kUnembed: return {c.d_vocab, d};
    case Slot::kPosEmbed: return {c.n_ctx, d};
    case Slot::kUnembedBias: return {c.d_vocab};
    case Slot::kQkvW: case Slot::kInW: return {part_rows(s, p, c).second, d};
    case Slot::kQkvB: case Slot::kInB: return {part_rows(s, p, c).second};
    case Slot::kOW: return {d, c.q_dim()};
    case Slot::kOutW: return {d, c.d_mlp};
    case Slot::kQNormW: return {c.qk_norm == QkNorm::kAllHeads ? c.q_dim() : c.d_head};
    case Slot::kKNormW: return {c.qk_norm == QkNorm::kAllHeads ? c.kv_dim() : c.d_head};
    default: return {d};  // norms, output and MLP-out biases
  }
}

std::vector<int64_t> stored_shape(Conv conv, std::vector<int64_t> canonical) {
  if (conv == Conv::kTranspose) std::reverse(canonical.begin(), canonical.end());
  return canonical;
}

namespace {

// [rows, in...] seen as [heads, a, b, in...], dims 1 and 2 swapped, flattened back.
at::Tensor swap_within_heads(const at::Tensor& t, int64_t heads, int64_t a, int64_t b) {
  std::vector<int64_t> split{heads, a, b};
  for (int64_t i = 1; i < t.dim(); ++i) split.push_back(t.size(i));
  return t.reshape(split).transpose(1, 2).reshape(t.sizes()).contiguous();
}

int64_t rope_heads(Part p, const ModelConfig& c) {
  if (p == Part::kQ) return c.n_heads;
  if (p == Part::kK) return c.n_kv_heads;
  fail_usage("kMetaRope applies to q or k rows only");
}

// NeoX: stored [head, 3, d_head, ...] <-> canonical [3, head, d_head, ...].
at::Tensor neox_regroup(const at::Tensor& t, const ModelConfig& c, bool to_canonical) {
  const int64_t h = c.n_heads, dh = c.d_head;
  if (c.n_kv_heads != h) fail_input("fused NeoX qkv needs as many key/value heads as query heads");
  std::vector<int64_t> from = to_canonical ? std::vector<int64_t>{h, 3, dh} : std::vector<int64_t>{3, h, dh};
  std::vector<int64_t> perm{1, 0, 2};
  if (t.dim() == 2) {
    from.push_back(t.size(1));
    perm.push_back(3);
  }
  return t.reshape(from).permute(perm).reshape(t.sizes()).contiguous();
}

}  // namespace

at::Tensor to_canonical(const at::Tensor& stored, Conv conv, Part p, const ModelConfig& c) {
  switch (conv) {
    case Conv::kNone: return stored;
    case Conv::kTranspose: return stored.t();  // a view: BLAS reads either orientation
    case Conv::kNeoxQkv: return neox_regroup(stored, c, true);
    case Conv::kMetaRope: return swap_within_heads(stored, rope_heads(p, c), c.d_head / 2, 2);
    case Conv::kPlusOne: return stored + 1;  // in the compute dtype, as Gemma's 1 + w.float()
  }
  return stored;
}

at::Tensor to_stored(const at::Tensor& canonical, Conv conv, Part p, const ModelConfig& c) {
  switch (conv) {
    case Conv::kNone: return canonical;
    case Conv::kTranspose: return canonical.t();
    case Conv::kNeoxQkv: return neox_regroup(canonical, c, false);
    case Conv::kMetaRope: return swap_within_heads(canonical, rope_heads(p, c), 2, c.d_head / 2);
    case Conv::kPlusOne: return canonical - 1;
  }
  return canonical;
}

SlotKind slot_kind(Slot s) {
  switch (s) {
    case Slot::kLn1W: case Slot::kLn2W: case Slot::kFinalNormW: case Slot::kQNormW: case Slot::kKNormW:
    case Slot::kLn1PostW: case Slot::kLn2PostW:
      return SlotKind::kNormWeight;
    case Slot::kLn1B: case Slot::kLn2B: case Slot::kFinalNormB: case Slot::kQkvB: case Slot::kOB:
    case Slot::kInB: case Slot::kOutB: case Slot::kUnembedBias: return SlotKind::kBias;
    default: return SlotKind::kMatrix;
  }
}

const at::Tensor& slot_ref(const ModelWeights& w, Slot s, int64_t layer) {
  return slot_ref(const_cast<ModelWeights&>(w), s, layer);
}

at::Tensor& slot_ref(ModelWeights& w, Slot s, int64_t layer) {
  switch (s) {
    case Slot::kEmbed: return w.w_e;
    case Slot::kPosEmbed: return w.w_pos;
    case Slot::kFinalNormW: return w.ln_f_w;
    case Slot::kFinalNormB: return w.ln_f_b;
    case Slot::kUnembed: return w.w_u;
    case Slot::kUnembedBias: return w.b_u;
    default: break;
  }
  LayerWeights& l = w.layers.at(static_cast<size_t>(layer));
  switch (s) {
    case Slot::kLn1W: return l.ln1_w;
    case Slot::kLn1B: return l.ln1_b;
    case Slot::kQkvW: return l.w_qkv;
    case Slot::kQkvB: return l.b_qkv;
    case Slot::kOW: return l.w_o;
    case Slot::kOB: return l.b_o;
    case Slot::kLn2W: return l.ln2_w;
    case Slot::kLn2B: return l.ln2_b;
    case Slot::kInW: return l.w_in;
    case Slot::kInB: return l.b_in;
    case Slot::kOutW: return l.w_out;
    case Slot::kQNormW: return l.q_norm_w;
    case Slot::kKNormW: return l.k_norm_w;
    case Slot::kLn1PostW: return l.ln1_post_w;
    case Slot::kLn2PostW: return l.ln2_post_w;
    default: return l.b_out;
  }
}

std::vector<TensorSpec> hf_qkv_rows(When bias, Conv gguf_qk, bool gguf_bias) {
  const When A = When::kAlways;
  auto g = [&](const char* name) { return gguf_bias ? StoredName{name} : StoredName{}; };
  return {
      {Slot::kQkvW, Part::kQ, A, {"model.layers.{L}.self_attn.q_proj.weight"}, {"blk.{L}.attn_q.weight", gguf_qk}},
      {Slot::kQkvW, Part::kK, A, {"model.layers.{L}.self_attn.k_proj.weight"}, {"blk.{L}.attn_k.weight", gguf_qk}},
      {Slot::kQkvW, Part::kV, A, {"model.layers.{L}.self_attn.v_proj.weight"}, {"blk.{L}.attn_v.weight"}},
      {Slot::kQkvB, Part::kQ, bias, {"model.layers.{L}.self_attn.q_proj.bias"}, g("blk.{L}.attn_q.bias")},
      {Slot::kQkvB, Part::kK, bias, {"model.layers.{L}.self_attn.k_proj.bias"}, g("blk.{L}.attn_k.bias")},
      {Slot::kQkvB, Part::kV, bias, {"model.layers.{L}.self_attn.v_proj.bias"}, g("blk.{L}.attn_v.bias")},
  };
}

std::vector<TensorSpec> hf_o_rows(When bias, bool gguf_bias) {
  return {
      {Slot::kOW, Part::kAll, When::kAlways, {"model.layers.{L}.self_attn.o_proj.weight"}, {"blk.{L}.attn_output.weight"}},
      {Slot::kOB, Part::kAll, bias, {"model.layers.{L}.self_attn.o_proj.bias"},
       gguf_bias ? StoredName{"blk.{L}.attn_output.bias"} : StoredName{}},
  };
}

std::vector<TensorSpec> hf_gated_mlp_rows() {
  const When A = When::kAlways;
  return {
      {Slot::kInW, Part::kGate, A, {"model.layers.{L}.mlp.gate_proj.weight"}, {"blk.{L}.ffn_gate.weight"}},
      {Slot::kInW, Part::kUp, A, {"model.layers.{L}.mlp.up_proj.weight"}, {"blk.{L}.ffn_up.weight"}},
      {Slot::kOutW, Part::kAll, A, {"model.layers.{L}.mlp.down_proj.weight"}, {"blk.{L}.ffn_down.weight"}},
  };
}

std::vector<TensorSpec> table_rows(std::initializer_list<std::vector<TensorSpec>> parts) {
  std::vector<TensorSpec> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace ms
