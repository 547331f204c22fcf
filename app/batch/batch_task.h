// The circuit-task parameters the batch `patch` and `circuit` adapters share (task, task_file, n,
// seed, seq_len, vocab_range, bos): their specs, their check against a model, the task they make
// (through make_cli_task, as `mechscope patch` / `circuit` do) and its size for the estimates.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/batch/batch_analyses.h"
#include "core/analysis/circuits/circuit_task.h"

namespace ms::app::batch {

// An analysis on a task: its kind, summary, the task parameters followed by its own.
Analysis task_analysis(const std::string& kind, const std::string& summary, const std::vector<ParamSpec>& own);
// "" when fine, else the message and the parameter in *param.
std::string check_task_params(const nlohmann::json& p, const ModelConfig& c, std::string* param);
// The task of an item (throws InputError when it cannot be made, e.g. ioi without a tokenizer).
TaskPairs make_item_task(const Model& m, const nlohmann::json& p);

// An item's output from the results made on a task: the results, and the pair counts stored with
// the run's parameters (n_pairs, survived, generated), as the commands store them.
ItemOutput task_item_output(const TaskPairs& task, RunResults results);

// Upper bounds for the estimates: prompt pairs and tokens per prompt.
struct TaskSize {
  int64_t pairs = 0, tokens = 0;
};
TaskSize task_size_bound(const nlohmann::json& p, const ModelConfig& c);
// A forward pass over the task's pairs (batch = pairs) and its multiply-adds.
double task_forward_bytes(const TaskSize& t, const ModelConfig& c);
double task_forward_flops(const TaskSize& t, const ItemShape& s);

}  // namespace ms::app::batch
