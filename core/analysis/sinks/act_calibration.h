// ACT's attention calibration (Yu et al.) measured on a prompt set: the task metric of each prompt
// (loss on its continuation, or on the prompt itself; multiple-choice accuracy) with the chosen
// heads' hidden sinks scaled by beta, and ACT's head search (calibrate one head with hidden sinks
// at a time; keep those that lower the mean loss).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/analysis/sinks/sinks.h"
#include "core/base/head_ref.h"
#include "core/model/model.h"

namespace ms {

// One prompt as the metric needs it (token ids; a continuation and choices as token ids).
struct CalibrationPrompt {
  std::vector<int32_t> ids;
  std::vector<int32_t> continuation;  // empty: the loss is on the prompt itself (from position 1)
  std::vector<std::vector<int32_t>> choices;  // empty: no accuracy
  int answer = -1;
};

struct PromptMetric {
  double loss = 0;
  int correct = -1;  // -1: no choices
};

// The metric of every prompt with heads' hidden sinks (from rep, prompt by prompt) scaled by
// beta; no heads: the model as is.
std::vector<PromptMetric> calibration_metrics(const Model& m, const SinkReport& rep,
                                              const std::vector<CalibrationPrompt>& prompts,
                                              const std::vector<HeadRef>& heads, double beta);
double mean_loss(const std::vector<PromptMetric>& v);

// ACT's search over the heads with at least one hidden sink; progress counts candidates and
// cancel is read between them (the heads found so far are returned).
std::vector<HeadRef> search_calibration_heads(const Model& m, const SinkReport& rep,
                                              const std::vector<CalibrationPrompt>& prompts, double beta,
                                              const std::vector<PromptMetric>& base,
                                              const std::function<void(int64_t, int64_t)>& progress = {},
                                              const std::atomic<bool>* cancel = nullptr);

}  // namespace ms
