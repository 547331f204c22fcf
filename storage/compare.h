// Comparing two runs head by head: the same metric on two models, or on one model before and
// after an intervention. Heads are matched by (layer, head); the biggest differences come first.
#pragma once

#include <string>
#include <vector>

#include "core/base/result.h"
#include "storage/circuit_records.h"
#include "storage/database.h"

namespace ms {

struct HeadDiff {
  int layer = 0, head = 0;
  double a = 0, b = 0;
  double diff = 0;  // b - a
};

struct MetricComparison {
  std::string metric;
  int n_common = 0;        // heads with a value in both runs
  int only_a = 0, only_b = 0;
  double mean_abs_diff = 0, max_abs_diff = 0;
  double pearson = 0;      // NaN when undefined (fewer than 2 heads, or a constant side)
  std::vector<HeadDiff> heads;  // every common head, largest |diff| first
};

struct RunComparison {
  RunInfo a, b;
  // Whether the two runs are of one model (the same model id or the same weights). Runs of two
  // models are compared only when asked (CompareOptions::across_models) and when both models have
  // the same layers x heads; `note` then says that heads were matched by layer.head.
  bool same_model = true;
  std::string model_a, model_b;  // the models' paths ("" for a run without a model)
  std::string note;
  std::vector<MetricComparison> metrics;      // metrics both runs have, by name
  std::vector<std::string> only_a, only_b;    // metrics one run lacks
  std::vector<CircuitComparison> circuits;    // circuits of the same name (else the first of each)
};

MetricComparison compare_scores(const HeadScores& a, const HeadScores& b);
struct CompareOptions {
  std::string metric;          // "": every metric the two runs share; else it must be in both
  bool across_models = false;  // match heads of two different models by layer.head (same shape only)
};
// Runs of two different models are refused (kUsage, naming both models) unless
// opts.across_models, and then also when their layer x head shapes differ.
Result<RunComparison> compare_runs(Database& db, int64_t run_a, int64_t run_b, const CompareOptions& opts = {});

}  // namespace ms
