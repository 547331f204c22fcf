// Training a Model in place with next-token cross-entropy through its own hooked forward pass:
// AdamW (decoupled weight decay on matrices), global-norm gradient clipping, linear warm-up then
// cosine decay, a progress callback and a cancel flag. Deterministic for a seed and a thread count.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/model/model.h"
#include "core/base/result.h"
#include "core/zoo/zoo_tasks.h"

namespace ms {

struct TrainConfig {
  int64_t steps = 1000;
  int64_t batch = 32;
  double lr = 1e-3;            // peak learning rate
  double min_lr_ratio = 0.1;   // the cosine decays to lr * min_lr_ratio at the last step
  int64_t warmup = 100;        // steps of linear warm-up from 0
  double weight_decay = 0.1;   // decoupled; matrices only (not biases or norm weights)
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-8;
  double clip = 1.0;           // global gradient-norm clip; 0: none
  double init_std = 0.02;
  bool sinusoidal_positions = false;  // learned positions start as scaled sin/cos (see init_weights)
  uint64_t seed = 1;           // weights; the data's seed is the caller's
  int threads = 2;             // intra-op threads while training (results depend on it)
};

struct TrainProgress {
  int64_t step = 0;        // steps done
  int64_t steps = 0;       // steps in all
  double loss = 0;         // training loss, smoothed (exponential moving average, 0.95)
  double lr = 0;
  double tokens_per_s = 0; // since the start
  double elapsed_s = 0;
};

struct TrainCallbacks {
  std::function<void(const TrainProgress&)> on_progress;  // called every `report_every` steps
  int64_t report_every = 1;
  const std::atomic<bool>* cancel = nullptr;  // checked before every step
};

struct TrainOutcome {
  bool cancelled = false;
  int64_t steps_done = 0;
  int64_t tokens = 0;          // tokens processed (batch * positions per step)
  double seconds = 0;
  double tokens_per_s = 0;
  double final_loss = 0;       // mean training loss of the last 5% of steps (at least 1)
  double first_loss = 0;       // loss of the first step
  std::vector<std::pair<int64_t, double>> loss_curve;  // (step, mean loss) per 1% of the steps
};

// Produces the batch of a step (the caller's seeded data stream).
using BatchFn = std::function<TaskBatch(int64_t step)>;

// Fresh GPT-2-style weights for cfg: matrices ~ N(0, std), the projections that write into the
// residual stream (w_o, w_out) ~ N(0, std / sqrt(2 n_layers)), norm weights 1, biases 0. Learned
// positions ~ N(0, std / 2), or with sinusoidal the Transformer's sin/cos table scaled to the same
// norm per position as the token embeddings (still trained like any other weight).
ModelWeights init_weights(const ModelConfig& cfg, uint64_t seed, double std = 0.02,
                          bool sinusoidal = false);

// The learning rate of a step (0-based).
double lr_at(const TrainConfig& cfg, int64_t step);

// Trains the model's weights in place (they are made leaf tensors that require grad for the run
// and are detached again at the end). Sets the intra-op thread count to cfg.threads.
Result<TrainOutcome> train_model(Model& model, const TrainConfig& cfg, const BatchFn& next_batch,
                                 const TrainCallbacks& callbacks = {});

}  // namespace ms
