// The registry of analyses a batch job can run: one adapter per kind says which parameters it
// takes (types, defaults, which may be grid axes), checks a grid cell against the model, estimates
// its memory and work, and runs one item into the results stored as one run.
// To add an analysis: write app/batch_<kind>.cpp defining an Analysis and list it in registry().
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/batch/batch_job.h"
#include "core/model/model.h"
#include "runs/analysis_spec.h"
#include "runs/run_session.h"
#include "storage/records.h"

namespace ms::app::batch {

// Parameters are declared as the runs library declares them (runs/analysis_spec.h): an analysis
// with an AnalysisSpec takes its batch parameters from it (params_from_spec).
using ms::ParamType;
using ParamSpec = ms::ParamDecl;
using ms::param_type_name;

// Sizes an item works on, for the estimates.
struct ItemShape {
  const ModelConfig* config = nullptr;
  int64_t n_params = 0;
  int64_t n_prompts = 0, max_tokens = 0;  // of the prompt set (0 without one)
};

struct Estimate {
  double activation_bytes = 0;  // on top of the weights (double: sizes from a job file never overflow)
  double flops = 0;
};

// What running an item gives besides its runs (finished through ctx.session by a run function of
// runs/, committed by the runner in one transaction): a short summary for the progress events.
struct ItemOutput {
  nlohmann::json summary = nlohmann::json::object();
};

struct ItemContext {
  const Job& job;
  const WorkItem& item;
  const Model& model;
  std::function<void(int64_t done, int64_t total)> progress;
  const std::atomic<bool>* cancel = nullptr;
  // A one-transaction session with the item's provenance (command, key, resume key, "batch"
  // parameters): run functions of runs/ store the item through it.
  RunSession* session = nullptr;
};

struct Analysis {
  std::string kind;
  std::string summary;
  bool uses_prompts = false;  // items are (model x prompt set x cell) instead of (model x cell)
  std::vector<ParamSpec> params;
  // A cell's parameters against the model: "" when fine, else the message (and the parameter it
  // is about in *param, for the line number).
  std::function<std::string(const nlohmann::json& p, const ModelConfig& c, std::string* param)> check;
  std::function<Estimate(const nlohmann::json& p, const ItemShape& s)> estimate;
  // Runs the item through ctx.session. Throws InputError on bad input; returns early only when
  // cancelled (the runner then stores nothing).
  std::function<ItemOutput(ItemContext& ctx)> run;
};

// The batch side of an AnalysisSpec: its kInBatch parameters, and a check that completes a cell's
// parameters against the spec (ranges, choices, formats, cross-checks) like the run function will.
std::vector<ParamSpec> params_from_spec(const AnalysisSpec& spec);
std::function<std::string(const nlohmann::json&, const ModelConfig&, std::string*)> check_from_spec(const AnalysisSpec& spec);

// An adapter's kind, summary, prompt use, parameters and check from its AnalysisSpec; the adapter
// adds its estimate and run.
Analysis analysis_from_spec(const AnalysisSpec& spec);

const std::vector<Analysis>& registry();
const Analysis* find_analysis(const std::string& kind);

// The adapters (app/batch_<kind>.cpp).
Analysis sinks_analysis();
Analysis retrieval_analysis();
Analysis heads_analysis();
Analysis sae_features_analysis();
Analysis sae_heads_analysis();
Analysis patch_analysis();
Analysis circuit_analysis();
Analysis sae_train_analysis();
Analysis sae_circuit_analysis();

// Shared by the estimates: bytes of a forward pass over t tokens (batch 1, f32): residual
// stream and MLP activations, one layer's attention scores, the KV cache of every layer.
double forward_activation_bytes(const ModelConfig& c, int64_t t);
// Multiply-adds x 2 of one forward pass over t tokens.
double forward_flops(const ModelConfig& c, int64_t n_params, int64_t t);

}  // namespace ms::app::batch
