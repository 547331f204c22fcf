// Retrieval heads (Wu et al. 2024; core/analysis/retrieval/) as stored runs: their parameters
// (retrieval_spec) and the one function `mechscope retrieval`, batch jobs and the workbench call,
// so they store the same runs.
#pragma once

#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/analysis/retrieval/retrieval.h"
#include "runs/analysis_spec.h"
#include "runs/run_session.h"

namespace ms {

const AnalysisSpec& retrieval_spec();

struct RetrievalConditionResult {
  std::string name;                // "top-K", "random-K"
  int64_t run_id = 0;              // the last masked run
  at::Tensor accuracy;             // mean over draws
  std::vector<std::string> heads;  // per draw
};

struct RetrievalRunOutcome {
  int64_t run_id = 0;
  bool cancelled = false;  // the session's cancel stopped it; cancelled_run is marked cancelled (live)
  int64_t cancelled_run = 0;
  int64_t reused = 0;      // cells read back with resume
  nlohmann::json params;   // completed and canonical (lengths filled in)
  RetrievalReport report;  // the unmasked grid
  std::vector<HeadRef> retrieval_heads;  // score > threshold
  std::vector<RetrievalConditionResult> conditions;
};

// Completes and checks params (usage error naming the parameter; lengths [] = the model's default
// lengths), builds the grid (text episodes with a tokenizer, token-id episodes without) and stores
// through the session a "retrieval" run: the parameters with the episode source's hash, the
// retrieval_score head scores and the accuracy grid. mask_top / mask_random re-run the grid with
// heads masked, each a "retrieval-mask" run linked to it. A live session also stores every
// (condition, length, depth, needle) cell as a "retrieval-item" run with a resume key, so a re-run
// with resume reads the finished cells back (a one-transaction session, a batch item, resumes as a
// whole). Progress counts cells over every condition.
RetrievalRunOutcome run_retrieval(RunSession& session, const Model& m, nlohmann::json params);

// "1.2,0.3" or "none".
std::string heads_text(const std::vector<HeadRef>& heads);

}  // namespace ms
