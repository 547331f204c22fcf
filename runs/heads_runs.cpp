// run_heads: the head detectors (core/analysis/heads/head_detectors.h) on a batch of sequences,
// stored through a RunSession as one "heads" run the way `mechscope heads` and the workbench both
// store it.
#include <ATen/ATen.h>

#include "runs/analysis_runs.h"

namespace ms {

HeadsRunOutcome run_heads(RunSession& session, const Model& m, const at::Tensor& tokens,
                          const std::vector<HeadPattern>& patterns, const DetectOptions& opts,
                          const std::string& params_json) {
  if (patterns.empty()) fail_usage("--detect is empty");
  session.begin(m, "heads", nlohmann::json::parse(params_json));
  HeadsRunOutcome out;
  out.run_id = session.run_id();
  RunResults res;
  const int64_t total = static_cast<int64_t>(patterns.size());
  for (int64_t i = 0; i < total; ++i) {
    if (session.cancelled()) {
      session.cancel("cancelled after " + std::to_string(i) + " of " + std::to_string(total) + " detectors");
      out.cancelled = true;
      return out;
    }
    HeadPattern p = patterns[static_cast<size_t>(i)];
    Result<at::Tensor> s = detect_heads(m, tokens, p, opts);
    if (!s) {
      session.fail(s.error().message);
      throw InputError(s.error().message, s.error().code);
    }
    res.scores.push_back(head_scores_from_tensor(head_pattern_name(p), *s));
    out.scores.emplace_back(p, *s);
    session.progress(i + 1, total);
  }
  res.tensors.push_back({"tokens", tokens, R"({"kind":"tokens","axes":["sequence","position"]})"});
  session.finish(res);
  return out;
}

Result<HeadsRunOutcome> run_heads_stored(Database& db, const Model& model, const at::Tensor& tokens,
                                         const std::vector<HeadPattern>& patterns, const DetectOptions& opts,
                                         const std::string& params_json, const std::string& command,
                                         const RunProgress& progress, const std::atomic<bool>* cancel) {
  return guard([&] {
    RunControl control(progress);
    control.follow(cancel);
    RunSession session(db, control, {command});
    return run_heads(session, model, tokens, patterns, opts, params_json);
  });
}

}  // namespace ms
