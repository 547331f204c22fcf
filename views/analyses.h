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

// The needles file the window offers: resources/needles/default-model.jsonl for the bundled
// default model (its corpus' question form), else resources/needles/default.jsonl.
std::string default_needles_file(const std::string& model_path);

// Retrieval heads (runs/retrieval_run.h run_retrieval, as `mechscope retrieval`): params are
// retrieval_spec's; without "needles", a model with a tokenizer takes default_needles_file.
void launch_retrieval(Workbench& wb, nlohmann::json params);

struct HeadsParams {
  nlohmann::json params = nlohmann::json::object();  // heads_spec's parameters (runs/heads_run.h)
  bool on_prompt = false;    // the current prompt; else, without a prompts file, repeated random tokens
  std::string prompts_file;  // each prompt of the file, as `mechscope heads --prompts`
};

// Head detectors (runs/heads_run.h run_heads, as `mechscope heads`).
void launch_heads(Workbench& wb, const HeadsParams& params);

// Activation patching and circuit discovery on a task (runs/patch_run.h run_patch and
// runs/circuit_run.h run_circuit, as `mechscope patch` / `mechscope circuit`): params are the
// spec's parameters (patch_spec, circuit_spec); missing ones take their defaults. Bad parameters
// go to the workbench's popup.
void launch_patch(Workbench& wb, const nlohmann::json& params);
void launch_circuit(Workbench& wb, const nlohmann::json& params);
// Discrete-SAE circuit identification (runs/dsae_circuit_run.h run_dsae_circuit, as `mechscope sae
// circuit`): params are dsae_circuit_spec's parameters.
void launch_sae_circuit(Workbench& wb, const nlohmann::json& params);

struct SaeLaunchParams {
  nlohmann::json params = nlohmann::json::object();  // the spec's parameters (sae_train, sae_features, sae_heads)
  std::string prompts_file;  // "" : the workbench's current prompt
};

// SAE training and feature dashboards (runs/sae_train_run.h run_sae_train, runs/sae_features_run.h
// run_sae_features, as `mechscope sae train` / `mechscope sae features`) on a prompts file or the
// current prompt. Bad parameters or prompts go to the workbench's popup; a bad SAE file fails the task.
void launch_sae_train(Workbench& wb, const SaeLaunchParams& params);
void launch_sae_features(Workbench& wb, const SaeLaunchParams& params);

// A hook_z SAE's features attributed to heads (runs/sae_heads_run.h run_sae_heads, as `mechscope
// sae heads`); without "sae", the SAE the workbench has loaded (Features window).
void launch_sae_heads(Workbench& wb, const SaeLaunchParams& params);

}  // namespace ms::views
