// Shared pieces of `mechscope patch` and `mechscope circuit`: the task options, making the task
// (with the single-token filter's survivor count on stderr), the stored inputs, run bookkeeping.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "app/commands/cli.h"
#include "core/analysis/circuits/circuit_task.h"
#include "storage/database.h"

namespace ms::app {

struct TaskCliOptions {
  std::string task = "ioi", task_file, vocab_range;
  int64_t n = 32, seq_len = 8;
  uint64_t seed = 0;
  bool no_bos = false;
};
void add_task_options(CLI::App& cmd, TaskCliOptions& o);
// "LO:HI" (--vocab-range) -> the token range; false when malformed.
bool parse_vocab_range(const std::string& s, int32_t* lo, int32_t* hi);
// Throws InputError (exit 2 or 3) when the task cannot be made.
TaskPairs make_cli_task(const Model& m, const TaskCliOptions& o, bool quiet);
// Clean prompts as run inputs; clean / corrupted tokens and answers as tensors.
void add_task_results(const Model& m, const TaskPairs& t, RunResults& res);
// Token labels of the first clean prompt ("<id>" without a tokenizer).
std::vector<std::string> first_prompt_labels(const Model& m, const TaskPairs& t);

// Registers the model, begins a run of this kind with these parameters; throws on failure.
int64_t begin_cli_run(Database& db, const Model& m, const std::string& kind, const std::string& params_json);
void throw_if_failed(const Status& s);

// SIGINT sets the flag while a Interruptible lives.
class Interruptible {
 public:
  Interruptible();
  ~Interruptible();
  const std::atomic<bool>* flag() const;
  bool cancelled() const;
};

}  // namespace ms::app
