// The analyses behind `mechscope patch` and `mechscope circuit` as functions from a model and a
// task to the results stored as one run. The run functions of runs/patch_run.h and
// runs/circuit_run.h call these for the CLI, batch jobs and the workbench alike.
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "core/analysis/circuits/circuit_discovery.h"
#include "core/analysis/circuits/patching.h"
#include "storage/records.h"

namespace ms {

// Adds the DLA head scores ("dla") and the per-component tensor ("dla_components") to res.
void add_dla_results(const DlaResult& dla, RunResults& res);

struct PatchRun {
  PatchGrid grid;
  DlaResult dla;
  std::vector<std::string> labels;  // token labels of the first clean prompt
  RunResults results;               // task inputs, the grid (normalised and raw), DLA
  bool cancelled = false;           // results are then incomplete
};
// Activation patching and DLA on the task. Throws InputError when the grid cannot be made (an
// unknown `what`, mlp_out on a model without MLPs).
PatchRun patch_run(const Model& m, const TaskPairs& task, const PatchOptions& po, const CircuitProgress& progress,
                   const std::atomic<bool>* cancel);

struct CircuitOptions {
  std::string method = "eap";  // eap | eap-ig | acdc | path
  std::string loss = "kl";     // acdc: kl | logit-diff
  std::string receivers = "logits";  // path: logits, mL, L.H, L.H:q|k|v, comma separated
  std::string name;            // the circuit's name ("" : the task's)
  int64_t top_n = 0;           // 0: 20 edges (path: 10 heads)
  double threshold = NAN;      // NaN: select by top_n
  double tau = 0.01;
  int ig_steps = 5;
  bool evaluate = false;
};
// "" when the options are consistent, else the message, with the option it is about in *option
// ("method", "top_n", ...). cli: name options as flags ("--top-n") in the message.
std::string check_circuit_options(const CircuitOptions& o, bool cli, std::string* option);
// Receiver targets of path patching ("logits", "m3", "1.2" (q, k and v), "1.2:k"); "" when
// fine, else the message.
std::string parse_receivers(const CircuitGraph& g, const std::string& s, std::vector<int>* out);

struct CircuitRun {
  TaskRuns runs;
  at::Tensor scores, kept;  // [n_targets, n_sources]
  Circuit circuit;
  Faithfulness faithfulness;  // with evaluate
  DlaResult dla;
  int64_t top_n = 0;          // the top-n used (the default filled in)
  int64_t acdc_tested = 0;
  RunResults results;         // task inputs, the circuit, edge scores, per-head scores, DLA
  bool cancelled = false;
};
// Runs the method on the task and selects the circuit. The options must pass
// check_circuit_options; receivers are parsed here (InputError when they do not parse).
CircuitRun circuit_run(const Model& m, const CircuitGraph& g, const TaskPairs& task, const CircuitOptions& o,
                       const std::string& task_name, const CircuitProgress& progress,
                       const std::atomic<bool>* cancel);

}  // namespace ms
