// run_heads_stored: the head detectors (core/analysis/heads/head_detectors.h) on a batch of sequences, stored as
// one "heads" run the way `mechscope heads` and the workbench both store it.
#include <ATen/ATen.h>

#include "runs/analysis_runs.h"

namespace ms {
namespace {

HeadsRunOutcome heads_impl(Database& db, const Model& m, const at::Tensor& tokens,
                           const std::vector<HeadPattern>& patterns, const DetectOptions& opts,
                           const std::string& params_json, const std::string& command, const RunProgress& progress,
                           const std::atomic<bool>* cancel) {
  if (patterns.empty()) fail_usage("--detect is empty");
  Result<int64_t> model_id = db.register_model(m);
  if (!model_id) throw InputError(model_id.error().message, model_id.error().code);
  RunSpec spec("heads", *model_id, params_json);
  spec.command = command;
  Result<int64_t> run = db.begin_run(spec);
  if (!run) throw InputError(run.error().message, run.error().code);
  HeadsRunOutcome out;
  out.run_id = *run;
  RunResults res;
  const int64_t total = static_cast<int64_t>(patterns.size());
  for (int64_t i = 0; i < total; ++i) {
    if (cancel && *cancel) {
      (void)db.cancel_run(*run, "cancelled after " + std::to_string(i) + " of " + std::to_string(total) + " detectors");
      out.cancelled = true;
      return out;
    }
    HeadPattern p = patterns[static_cast<size_t>(i)];
    Result<at::Tensor> s = detect_heads(m, tokens, p, opts);
    if (!s) {
      (void)db.fail_run(*run, s.error().message);
      throw InputError(s.error().message, s.error().code);
    }
    res.scores.push_back(head_scores_from_tensor(head_pattern_name(p), *s));
    out.scores.emplace_back(p, *s);
    if (progress) progress(i + 1, total);
  }
  res.tensors.push_back({"tokens", tokens, R"({"kind":"tokens","axes":["sequence","position"]})"});
  Status st = db.finish_run(*run, res);
  if (!st) throw InputError(st.error().message, st.error().code);
  return out;
}

}  // namespace

Result<HeadsRunOutcome> run_heads_stored(Database& db, const Model& model, const at::Tensor& tokens,
                                         const std::vector<HeadPattern>& patterns, const DetectOptions& opts,
                                         const std::string& params_json, const std::string& command,
                                         const RunProgress& progress, const std::atomic<bool>* cancel) {
  return guard([&] {
    return heads_impl(db, model, tokens, patterns, opts, params_json, command, progress, cancel);
  });
}

}  // namespace ms
