// Training sparse autoencoders and transcoders on an ActivationStore, with SAELens 6.x's training
// semantics (sae_lens/saes/{standard,topk,jumprelu}_sae.py TrainingSAE classes, training/
// sae_trainer.py): standard = ReLU + L1 of the activations weighted by the decoder rows' norms;
// topk = the k largest pre-activations with the aux-k loss on dead features; jumprelu = learned
// log-thresholds through the straight-through estimator with a rectangle kernel of `bandwidth`,
// and an L0 penalty. Gradients are written out by hand (six GEMMs a step), Adam is plain at::
// arithmetic, and every random choice is a function of the seed and the step, so a run resumed
// from a checkpoint is bit-identical to an uninterrupted one at the same thread count.
// docs/features.md ("Training") lists the defaults and where they differ from SAELens.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "core/features/activation_store.h"
#include "core/features/sae.h"

namespace ms {

struct SaeTrainOptions {
  SaeArch arch = SaeArch::kStandard;  // standard, topk, jumprelu; transcoder, skip_transcoder, jumprelu_transcoder
  int64_t d_sae = 0;
  int64_t k = 32;                     // topk
  int64_t steps = 1000;
  int64_t batch_size = 4096;
  double lr = 3e-4;
  double adam_beta1 = 0.9, adam_beta2 = 0.999;
  int64_t lr_warmup_steps = 0;   // linear from 0
  int64_t lr_decay_steps = 0;    // linear to 0 over the last this many steps
  double l1_coefficient = 1.0;   // standard (and transcoder): on sum_j |f_j| |W_dec_j|
  double l0_coefficient = 1.0;   // jumprelu: on the number of active features
  int64_t sparsity_warmup_steps = 0;  // the L1 / L0 coefficient rises linearly from 0
  double jumprelu_init_threshold = 0.001, jumprelu_bandwidth = 0.001;
  int64_t dead_feature_window = 1000;  // steps without firing -> dead
  double aux_k_coefficient = 1.0;      // topk: the aux-k loss on dead features (k_aux = d_in / 2)
  double decoder_init_norm = 0.1;      // standard / jumprelu decoder rows at init (topk: 1)
  bool b_dec_init_mean = true;         // b_dec starts at the activations' mean (else zero)
  // Train on x * sqrt(d_in) / E|x| (SAELens' expected_average_only_in), folded into the weights at
  // the end so the written SAE takes raw activations.
  bool normalize_activations = true;
  uint64_t seed = 0;
  int64_t log_every = 50;        // a training-curve point every this many steps (and the last)
  int64_t checkpoint_every = 0;  // 0: only at the end and when cancelled
  std::string checkpoint_dir;    // "": no checkpoints
  bool resume = false;           // continue from checkpoint_dir's checkpoint when there is one
  // Written into the SAE's config.
  std::string hook_name, hook_name_out, model_name;
};

struct SaeTrainPoint {
  int64_t step = 0;  // steps done
  double mse = 0;    // batch mean of sum_d (x - x_hat)^2, in the activations' units
  double explained_variance = 0;  // 1 - mse / batch variance
  double l0 = 0;
  double sparsity_loss = 0, aux_loss = 0;
  int64_t dead_features = 0;
  double lr = 0;
};

struct SaeTrainResult {
  std::shared_ptr<Sae> sae;  // in the activations' units (normalisation folded)
  std::vector<SaeTrainPoint> curve;
  int64_t steps_done = 0;
  int64_t resumed_from = 0;  // the checkpoint's step (0: from scratch)
  bool cancelled = false;
  double norm_scaling_factor = 1;  // the factor trained with (folded into sae)
  double seconds = 0;
};

struct SaeTrainControl {
  std::function<void(int64_t done, int64_t total)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

// Trains on the store (a transcoder's store has targets). Errors: kUsage for options that do not
// fit (k > d_sae, a transcoder without targets), kBadInput for an unreadable or mismatched
// checkpoint (naming the file). When cancelled, a checkpoint is written (when checkpoint_dir is
// set) and the SAE so far is returned with cancelled = true.
Result<SaeTrainResult> train_sae(const ActivationStore& store, const SaeTrainOptions& opts,
                                 const SaeTrainControl& control = {});

// Parses "standard", "topk", "jumprelu", "transcoder", "skip_transcoder", "jumprelu_transcoder".
Result<SaeArch> parse_train_arch(const std::string& s);

}  // namespace ms
