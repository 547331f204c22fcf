// The typed records analyses store and read back: models, runs and their results (inputs, per-head
// scores, tensors, circuits) and run-to-run links. Plain data; see database.h for the calls.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/features/feature_card.h"

namespace ms {

// A model as the database knows it. A changed checkpoint (other weight bytes) has another
// content_hash and is another model (see model_hash.h for how the hash is computed).
struct ModelInfo {
  int64_t id = 0;             // set by the database
  std::string path;           // folder or file it was loaded from ("" for in-memory models)
  std::string architecture;   // "gpt2", "llama", ...
  std::string config_json;    // ModelConfig::to_json()
  std::string content_hash;   // "sha256:<hex>" of the weight files, or "sha256-tensors:<hex>"
  int64_t n_params = 0;
  std::string created_at;     // ISO 8601 UTC, set by the database
};

enum class RunStatus { kQueued, kRunning, kDone, kFailed, kCancelled };
const char* run_status_name(RunStatus s);               // "queued", "running", ...
std::optional<RunStatus> parse_run_status(const std::string& s);

// What a run is: set when it starts.
struct RunSpec {
  RunSpec() = default;
  RunSpec(std::string kind_, int64_t model_id_ = 0, std::string params_json_ = "{}")  // NOLINT
      : kind(std::move(kind_)), model_id(model_id_), params_json(std::move(params_json_)) {}

  std::string kind;         // "sinks", "retrieval", "heads", "patch", "circuit", "batch", "batch-item"
  int64_t model_id = 0;     // 0: no model
  std::string params_json = "{}";
  std::string command;      // the exact command line that reproduces the run (shell_join(argv))
  std::string resume_key;   // optional: lets a batch skip work already done (find_done_run)
  std::string label;        // optional: a name the user gave
};

// A run as read back.
struct RunInfo {
  int64_t id = 0;
  RunSpec spec;
  std::string mechscope_version;
  RunStatus status = RunStatus::kQueued;
  double progress = 0.0;    // 0..1
  std::string created_at, started_at, finished_at;  // "" when not yet
  std::string error;        // failed / cancelled: why
  int64_t pid = 0;          // the writing process while running
  std::string host;
};

// One input of a run: a prompt and its tokens (token strings label attention heatmaps).
struct InputRecord {
  int index = 0;            // position within the run, from 0
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<std::string> tokens;  // display strings, same length as token_ids (may be empty)
};

// One metric for every head: values[layer * n_heads + head]. NaN = not computed (not stored).
struct HeadScores {
  std::string metric;       // "sink_rate", "retrieval_score", "induction_score", "dla", ...
  int n_layers = 0, n_heads = 0;
  std::vector<double> values;
  double at(int layer, int head) const { return values[static_cast<size_t>(layer) * n_heads + head]; }
};
// From a [n_layers, n_heads] tensor of any floating dtype.
HeadScores head_scores_from_tensor(const std::string& metric, const at::Tensor& scores);

// A named tensor of a run (heatmap, patching grid). meta_json says how to show it, e.g.
// {"kind":"attention","input":0,"layer":3,"head":2} for an attention pattern [query, key].
struct NamedTensor {
  std::string name;
  at::Tensor tensor;        // any device; stored as its dtype's little-endian bytes
  std::string meta_json = "{}";
};

// What a stored tensor is, without its data.
struct TensorInfo {
  std::string name;
  std::string dtype;        // numpy names: "float32", "float16", "bfloat16", "int64", "bool", ...
  std::vector<int64_t> shape;
  int64_t raw_bytes = 0;
  int64_t stored_bytes = 0; // compressed
  std::string meta_json;
};

// A circuit: nodes (heads, MLPs, embeddings, logits) and scored edges between them.
struct CircuitNode {
  std::string name;         // "a3.2", "m5", "embed", "logits"
  std::string kind;         // "head", "mlp", "embed", "logits", "resid", ...
  int layer = -1;           // -1 for embed; n_layers for logits
  int head = -1;            // -1 when not a head
  double score = 0.0;
};
struct CircuitEdge {
  int src = 0, dst = 0;     // indices into nodes
  double score = 0.0;
};
struct Circuit {
  std::string name = "circuit";
  std::vector<CircuitNode> nodes;
  std::vector<CircuitEdge> edges;
  std::string meta_json = "{}";
};

// "run_id was <relation> source_run_id": "derived-from", "masked-from", "calibrated-from",
// "item-of" (a batch item of its batch run).
struct RunLink {
  int64_t run_id = 0;
  std::string relation;
  int64_t source_run_id = 0;
};

// Everything a run produces; written in one transaction together with its status flip to done.
struct RunResults {
  std::vector<InputRecord> inputs;
  std::vector<HeadScores> scores;
  std::vector<NamedTensor> tensors;
  std::vector<Circuit> circuits;
  std::vector<RunLink> links;  // run_id is filled in; links from this run to earlier ones
  std::vector<FeatureCard> features;  // feature dashboards (tables feature_cards, feature_examples)
};

// Shell-quotes argv into one line that reproduces a command ("mechscope sinks --text 'a b'").
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace ms
