// sink_run_results: the records of one attention-sink analysis, built in one place for the CLI,
// batch mode and the workbench.
#include <ATen/ATen.h>

#include "runs/analysis_runs.h"

namespace ms {

RunResults sink_run_results(const SinkReport& rep, const std::vector<std::string>& texts,
                            const std::vector<std::vector<int32_t>>& prompts,
                            const std::function<std::string(int32_t)>& label) {
  RunResults res;
  for (size_t i = 0; i < prompts.size(); ++i) {
    InputRecord in{static_cast<int>(i), i < texts.size() ? texts[i] : std::string(), prompts[i], {}};
    for (int32_t id : prompts[i]) in.tokens.push_back(label(id));
    res.inputs.push_back(std::move(in));
  }
  res.scores.push_back(head_scores_from_tensor("sink_rate", rep.head_sink_rate));
  res.scores.push_back(head_scores_from_tensor("alpha0", rep.head_alpha0));
  res.scores.push_back(head_scores_from_tensor("sink_mass", rep.head_sink_mass));
  res.scores.push_back(head_scores_from_tensor("hidden_sinks", rep.head_hidden_count.to(at::kDouble)));
  res.tensors.push_back({"sink_rate_curve", rep.sink_rate_curve, R"({"kind":"curve","x":"key position","y":"sink rate %"})"});
  res.tensors.push_back({"first_alpha", rep.first_alpha, R"({"kind":"alpha","axes":["prompt","layer","head","key"]})"});
  return res;
}

}  // namespace ms
