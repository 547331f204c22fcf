// The circuit-task parameters that patch and circuit share (task, task_file, n, seed, seq_len,
// vocab_range, bos), declared once; the task they make; and the task's stored inputs (clean prompts
// as inputs, clean / corrupted tokens as tensors) and pair counts.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/analysis/circuits/circuit_task.h"
#include "core/model/model.h"
#include "runs/analysis_spec.h"
#include "storage/records.h"

namespace ms {

// The task parameters, to put first in an analysis' spec.
std::vector<ParamDecl> task_param_decls();
// Checks across the task parameters and against the model ("" when fine, else the message and
// the parameter in *param).
std::string check_task_params(const nlohmann::json& p, const ModelConfig& c, std::string* param);
// "LO:HI" -> the token range; false when malformed.
bool parse_vocab_range(const std::string& s, int32_t* lo, int32_t* hi);
// The task the parameters describe; throws InputError when it cannot be made (e.g. ioi without a
// tokenizer, prompts longer than the model's positions).
TaskPairs make_param_task(const Model& m, const nlohmann::json& p);
// The pair counts stored with the run's parameters: n_pairs, survived, generated.
nlohmann::json task_counts(const TaskPairs& t);
// Clean prompts as run inputs; clean / corrupted tokens as tensors.
void add_task_results(const Model& m, const TaskPairs& t, RunResults& res);
// Token labels of the first clean prompt.
std::vector<std::string> first_prompt_labels(const Model& m, const TaskPairs& t);

}  // namespace ms
