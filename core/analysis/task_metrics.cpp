// Loss and multiple-choice metrics.
#include "core/analysis/task_metrics.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <string>

namespace ms {
namespace {

// Sum of log p(ids[t] | ids[:t]) for t in [start, end).
double log_prob(const Model& model, const std::vector<int32_t>& ids, int64_t start, const ForwardOptions& opts) {
  c10::InferenceMode guard;
  ForwardOptions o = opts;
  o.cache = nullptr;
  o.last_logits_only = false;
  o.stop_at_layer = -1;
  at::Tensor logits = model.forward(model.tokens_tensor(ids), o)[0];  // (T, V)
  at::Tensor lp = at::log_softmax(logits.to(at::kDouble), -1);
  const int64_t T = static_cast<int64_t>(ids.size());
  at::Tensor targets = at::tensor(std::vector<int64_t>(ids.begin() + start, ids.end()), at::kLong).to(lp.device());
  at::Tensor rows = lp.narrow(0, start - 1, T - start);
  return rows.gather(1, targets.unsqueeze(1)).sum().item<double>();
}

}  // namespace

double continuation_loss(const Model& model, const std::vector<int32_t>& ids, int64_t start,
                         const ForwardOptions& opts) {
  const int64_t T = static_cast<int64_t>(ids.size());
  if (start < 1 || start >= T) fail_usage("continuation_loss: nothing to score (start " + std::to_string(start) +
                                          " of " + std::to_string(T) + " tokens)");
  return -log_prob(model, ids, start, opts) / static_cast<double>(T - start);
}

std::vector<double> logit_diff_per_position(const at::Tensor& logits, int32_t answer, int32_t wrong) {
  at::Tensor x = (logits.dim() == 3 ? logits[0] : logits).to(at::kCPU, at::kDouble);  // (T, V)
  const int64_t V = x.size(1);
  if (answer < 0 || answer >= V || wrong >= V)
    fail_usage("logit_diff_per_position: token ids " + std::to_string(answer) + ", " + std::to_string(wrong) +
               " outside the vocabulary of " + std::to_string(V));
  at::Tensor d = x.select(1, answer);
  if (wrong >= 0) d = d - x.select(1, wrong);
  d = d.contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

std::vector<double> loss_per_position(const at::Tensor& logits, const std::vector<int32_t>& ids) {
  at::Tensor x = (logits.dim() == 3 ? logits[0] : logits).to(at::kCPU, at::kDouble);  // (T, V)
  const int64_t T = x.size(0);
  if (T != static_cast<int64_t>(ids.size()))
    fail_usage("loss_per_position: " + std::to_string(T) + " positions of logits for " + std::to_string(ids.size()) + " tokens");
  std::vector<double> out(static_cast<size_t>(T), std::nan(""));
  if (T < 2) return out;
  at::Tensor lp = at::log_softmax(x.narrow(0, 0, T - 1), -1).contiguous();  // (T-1, V)
  const double* p = lp.data_ptr<double>();
  const int64_t V = x.size(1);
  for (int64_t t = 0; t + 1 < T; ++t) out[static_cast<size_t>(t)] = -p[t * V + ids[static_cast<size_t>(t + 1)]];
  return out;
}

int best_choice(const Model& model, const std::vector<int32_t>& prompt,
                const std::vector<std::vector<int32_t>>& choices, const ForwardOptions& opts) {
  if (prompt.empty()) fail_usage("best_choice: empty prompt");
  int best = -1;
  double best_lp = -1e300;
  for (size_t c = 0; c < choices.size(); ++c) {
    if (choices[c].empty()) continue;
    std::vector<int32_t> ids = prompt;
    ids.insert(ids.end(), choices[c].begin(), choices[c].end());
    double lp = log_prob(model, ids, static_cast<int64_t>(prompt.size()), opts);
    if (lp > best_lp) {
      best_lp = lp;
      best = static_cast<int>(c);
    }
  }
  return best;
}

}  // namespace ms
