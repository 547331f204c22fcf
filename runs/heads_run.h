// The head detectors (core/analysis/heads/head_detectors.h, TransformerLens' head_detector
// semantics) as a stored run: their parameters (heads_spec) and the one function `mechscope
// heads`, batch jobs and the workbench call, so they store the same run.
#pragma once

#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "core/analysis/heads/head_detectors.h"
#include "core/io/prompts.h"
#include "runs/analysis_spec.h"
#include "runs/run_session.h"

namespace ms {

const AnalysisSpec& heads_spec();

// "previous,induction_head" -> the patterns, in the order given (short or TransformerLens names);
// a usage error names a bad one. canonical: "previous,induction".
std::vector<HeadPattern> parse_detect(const std::string& text, std::string* canonical = nullptr);

struct HeadsRunOutcome {
  int64_t run_id = 0;
  bool cancelled = false;  // the session was interrupted; the run is cancelled (live) or not stored
  nlohmann::json params;   // completed and canonical
  std::vector<std::pair<HeadPattern, at::Tensor>> scores;  // [layer, head] float64 per pattern
  int64_t n_sequences = 0, n_tokens = 0;                    // what it ran on (rows, longest row)
};

// Completes and checks params (usage error naming the parameter) and stores a "heads" run through
// the session: one head-score metric per pattern (its TransformerLens name). Without records the
// input is the repeated random sequences of the parameters (seq_len, n, seed, vocab_range, bos)
// and the tokens tensor is stored; with records each prompt (cut to max_tokens) is scored on its
// own, the metric is the mean over prompts, and the inputs and a "<pattern>_per_prompt" tensor
// [prompt, layer, head] are stored. The stored parameters say which ("input": "sequences" or
// "prompts") and leave out the other input's. Progress counts detector passes.
HeadsRunOutcome run_heads(RunSession& session, const Model& m, const std::vector<PromptRecord>& records,
                          nlohmann::json params);

}  // namespace ms
