// Analyses run and stored as runs, shared by the command line (`mechscope retrieval`, `mechscope
// heads`) and the workbench's Analyses window, so both store exactly the same records: the run,
// its parameters, head scores, tensors, and (retrieval) the per-cell item runs and masked runs.
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/analysis/heads/head_detectors.h"
#include "core/model/model.h"
#include "core/base/result.h"
#include "core/analysis/retrieval/retrieval.h"
#include "runs/run_session.h"
#include "storage/database.h"

namespace ms {

using RunProgress = std::function<void(int64_t done, int64_t total)>;

// --- retrieval heads (core/analysis/retrieval/retrieval.h, core/analysis/retrieval/needle.h) ---
struct RetrievalRunConfig {
  std::string haystack;  // text file; "" : procedural filler
  std::string needles;   // JSONL; "" : the built-in set (core/analysis/retrieval/needle.h default_needles)
  std::vector<int64_t> lengths;  // each in [8, n_ctx)
  int64_t depths = 10, mask_top = 0, mask_random = 0, seeds = 3, max_new = 50, id_needles = 2;
  double threshold = 0.1;
  bool exact_match = false, resume = false;
  std::string command;  // stored with the runs
  std::string cancel_note = "interrupted; finished cells are kept, re-run with --resume";
};

struct RetrievalConditionResult {
  std::string name;  // "top-K", "random-K"
  int64_t run_id = 0;  // the last masked run
  at::Tensor accuracy;  // mean over draws
  std::vector<std::string> heads;  // per draw
};

struct RetrievalRunOutcome {
  int64_t run_id = 0;
  bool cancelled = false;  // the cancel flag stopped it; cancelled_run is marked cancelled
  int64_t cancelled_run = 0;
  int64_t reused = 0;      // cells read back with resume
  std::vector<int64_t> lengths;
  RetrievalReport report;  // the unmasked grid
  std::vector<HeadRef> retrieval_heads;  // score > threshold
  std::vector<RetrievalConditionResult> conditions;
};

// Builds the grid (text episodes with a tokenizer, token-id episodes without), stores the run
// (kind "retrieval": retrieval_score head scores, accuracy grid), one "retrieval-item" run per cell
// with its resume key, and "retrieval-mask" runs for mask_top / mask_random. Bad parameters are
// kUsage errors; progress counts cells over every condition.
Result<RetrievalRunOutcome> run_retrieval(Database& db, const Model& model, const RetrievalRunConfig& cfg,
                                          RunControl& control);
// The same with a progress callback and an outside cancel flag.
Result<RetrievalRunOutcome> run_retrieval_stored(Database& db, const Model& model, const RetrievalRunConfig& cfg,
                                                 const RunProgress& progress = {},
                                                 const std::atomic<bool>* cancel = nullptr);

// "1.2,0.3" or "none".
std::string heads_text(const std::vector<HeadRef>& heads);

// --- head detectors (core/analysis/heads/head_detectors.h) ---
struct HeadsRunOutcome {
  int64_t run_id = 0;
  bool cancelled = false;  // the run is then marked cancelled
  std::vector<std::pair<HeadPattern, at::Tensor>> scores;  // [layer, head] float64 per pattern
};

// Runs each pattern's detector on tokens [B, T] through the session: a "heads" run with
// params_json, one head-score metric per pattern (its TransformerLens name) and the tokens tensor.
// Progress counts patterns; the session's cancel is checked between them.
HeadsRunOutcome run_heads(RunSession& session, const Model& model, const at::Tensor& tokens,
                          const std::vector<HeadPattern>& patterns, const DetectOptions& opts,
                          const std::string& params_json);
// The same on its own session; runs each pattern's detector on tokens [B, T] and stores a "heads" run with params_json: one
// head-score metric per pattern (its TransformerLens name) and the tokens tensor. Progress counts
// patterns; cancel is checked between them.
Result<HeadsRunOutcome> run_heads_stored(Database& db, const Model& model, const at::Tensor& tokens,
                                         const std::vector<HeadPattern>& patterns, const DetectOptions& opts,
                                         const std::string& params_json, const std::string& command,
                                         const RunProgress& progress = {},
                                         const std::atomic<bool>* cancel = nullptr);

}  // namespace ms
