// Sparse autoencoders and transcoders as SAELens defines them (sae_lens 6.x: saes/sae.py,
// standard_sae.py, gated_sae.py, jumprelu_sae.py, topk_sae.py, transcoder.py): the config, the
// weights, and one encode/decode pass whose stages can be tapped (the splice's hook points).
// Loading is in core/features/sae_load.h; splicing into a model in core/features/sae_splice.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>

#include "core/base/result.h"

namespace ms {

enum class SaeArch {
  kStandard,            // relu(x W_enc + b_enc)
  kGated,               // (x W_enc + b_gate > 0) * relu(x (W_enc * exp(r_mag)) + b_mag)
  kJumpRelu,            // relu(h) * (h > threshold)
  kTopK,                // the k largest of h, relu'd; the rest zero
  kTranscoder,          // standard encoder, decoder to another hook point (d_out)
  kSkipTranscoder,      // transcoder + x W_skip^T
  kJumpReluTranscoder,  // transcoder with the JumpReLU encoder
};
const char* sae_arch_name(SaeArch a);  // SAELens' "architecture" string
bool sae_is_transcoder(SaeArch a);

// Normalisation applied at run time (what could be folded into the weights at load was).
enum class SaeRuntimeNorm {
  kNone,
  kConstantNormRescale,  // x * sqrt(d_in) / |x| per token in, divided back out
  kLayerNorm,            // (x - mean) / (std + 1e-5) in (std unbiased, as torch.std), undone out
};

struct SaeConfig {
  SaeArch arch = SaeArch::kStandard;
  int64_t d_in = 0, d_sae = 0;
  int64_t d_out = 0;  // = d_in for an SAE
  int64_t k = 0;      // topk
  bool apply_b_dec_to_input = true;
  std::string normalize_activations = "none";  // as the file says
  SaeRuntimeNorm runtime_norm = SaeRuntimeNorm::kNone;
  double folded_norm_scaling_factor = 0;  // expected_average_only_in: the factor folded at load; 0 none
  bool reshape_hook_z = false;            // reshape_activations: hook_z ([.., heads, d_head] -> [.., d_in])
  std::string hook_name;                  // where it reads (and, for an SAE, writes)
  std::string hook_name_out;              // transcoders: where the output goes
  int64_t hook_head_index = -1;           // >= 0: the SAE reads one head of a [.., heads, d_head] point
  bool prepend_bos = true;
  std::string model_name;
  std::string format;  // "saelens" or "gemma-scope-npz"
  std::string source;  // the folder or file it came from
};

// Weights in SAELens' orientation. Undefined tensors are absent for the architecture.
struct SaeWeights {
  at::Tensor W_enc;      // [d_in, d_sae]
  at::Tensor b_enc;      // [d_sae] (not gated)
  at::Tensor W_dec;      // [d_sae, d_out] (a finetuning scaling_factor is folded in)
  at::Tensor b_dec;      // [d_out]
  at::Tensor threshold;  // [d_sae] jumprelu
  at::Tensor b_gate, r_mag, b_mag;  // [d_sae] gated
  at::Tensor W_skip;     // [d_out, d_in] skip transcoder
  at::Tensor log_sparsity;  // [d_sae] from sparsity.safetensors, when present
};

// The stages of a pass, named as SAELens' hook points under the SAE's hook.
enum class SaeStage { kInput, kActsPre, kActsPost, kRecons, kError, kOutput };
constexpr int kSaeStages = 6;
const char* sae_stage_hook(SaeStage s);  // "hook_sae_input", ...

// Sees (and may replace) the tensor of each stage; returns an undefined tensor to keep it.
using SaeTap = std::function<at::Tensor(SaeStage, const at::Tensor&)>;

struct SaePass {
  at::Tensor input;      // [.., d_in] after the tap
  at::Tensor acts_pre;   // [.., d_sae]
  at::Tensor acts_post;  // [.., d_sae]: the feature activations
  at::Tensor recons;     // [.., d_out] as hook_sae_recons sees it (before the runtime norm is undone)
  at::Tensor out;        // [.., d_out]: the reconstruction in the activation's units (+ skip)
};

class Sae {
 public:
  SaeConfig cfg;
  SaeWeights w;

  // One pass over x [.., d_in] (float32; other dtypes are converted), SAELens' order of
  // operations; tap (optional) runs at kInput, kActsPre, kActsPost and kRecons.
  // decode = false stops after the activations (recons and out left undefined).
  SaePass run(const at::Tensor& x, const SaeTap& tap = nullptr, bool decode = true) const;
  // The feature activations alone: no decoder product (half the work of a full pass).
  at::Tensor encode(const at::Tensor& x) const { return run(x, nullptr, false).acts_post; }
  // Moves the weights to a device (the model's, before splicing on CUDA).
  void to_device(c10::Device device);

  // A hook activation -> the SAE's input [.., d_in]: hook_z's heads concatenated, or the head
  // hook_head_index selected. Throws InputError when the shape does not fit.
  at::Tensor to_input(const at::Tensor& act) const;
  // The inverse for a result of d_in (= d_out) width: back to the activation's shape, or written
  // into that head of a copy of act.
  at::Tensor from_output(const at::Tensor& out, const at::Tensor& act) const;
};

}  // namespace ms
