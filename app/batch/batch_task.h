// The size of the circuit task a batch `patch` or `circuit` item works on, for the estimates (the
// task parameters themselves are declared in runs/task_run.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/batch/batch_analyses.h"

namespace ms::app::batch {

// Upper bounds for the estimates: prompt pairs and tokens per prompt.
struct TaskSize {
  int64_t pairs = 0, tokens = 0;
};
TaskSize task_size_bound(const nlohmann::json& p, const ModelConfig& c);
// A forward pass over the task's pairs (batch = pairs) and its multiply-adds.
double task_forward_bytes(const TaskSize& t, const ModelConfig& c);
double task_forward_flops(const TaskSize& t, const ItemShape& s);

}  // namespace ms::app::batch
