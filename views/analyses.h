// Analyses the workbench launches as background tasks, each stored as a run in the database (the
// task opens its own connection). The Analyses window and `mechscope gui --launch` call these.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace ms::views {

class Workbench;

struct SinksParams {
  nlohmann::json params = nlohmann::json::object();  // sinks_spec's parameters (runs/sinks_run.h); others: defaults
  std::string prompts_file;       // "" : the workbench's current prompt
};

// Attention sinks (runs/sinks_run.h run_sinks, as `mechscope sinks`) on the current prompt or a prompts file; errors before the start
// go to the workbench's popup, errors during the run mark the task failed (and the run failed).
void launch_sinks(Workbench& wb, const SinksParams& params);

struct RetrievalParams {
  std::string needles;     // "" : default_needles_file(model path)
  std::string lengths;     // "a,b,c"; "" : the CLI's default (10 from 256 to the context limit)
  int64_t depths = 5;
  double threshold = 0.1;
  int64_t mask_top = 0;    // > 0: re-run with the top K heads masked (linked run)
};
// The needles file the window offers: resources/needles/default-model.jsonl for the bundled
// default model (its corpus' question form), else resources/needles/default.jsonl.
std::string default_needles_file(const std::string& model_path);

// Retrieval heads (runs/analysis_runs.h run_retrieval_stored, as `mechscope retrieval`).
void launch_retrieval(Workbench& wb, const RetrievalParams& params);

struct HeadsParams {
  bool previous = true, duplicate = true, induction = true;
  bool on_prompt = false;  // the current prompt; else repeated random tokens:
  int64_t seq_len = 20, n = 16;
  uint64_t seed = 0;
};

// Head detectors (runs/analysis_runs.h run_heads_stored, as `mechscope heads`).
void launch_heads(Workbench& wb, const HeadsParams& params);

// Activation patching and circuit discovery on a task (runs/patch_run.h run_patch and
// runs/circuit_run.h run_circuit, as `mechscope patch` / `mechscope circuit`): params are the
// spec's parameters (patch_spec, circuit_spec); missing ones take their defaults. Bad parameters
// go to the workbench's popup.
void launch_patch(Workbench& wb, const nlohmann::json& params);
void launch_circuit(Workbench& wb, const nlohmann::json& params);

}  // namespace ms::views
