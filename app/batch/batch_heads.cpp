// Batch adapter for the head detectors: one item = one model on one prompt set with one cell of
// heads_spec's parameters, run and stored by run_heads (runs/heads_run.h) as `mechscope heads
// --prompts` and the workbench store it.
#include <ATen/ATen.h>

#include "app/batch/batch_analyses.h"
#include "core/base/head_ref.h"
#include "core/io/prompts.h"
#include "runs/heads_run.h"

namespace ms::app::batch {
namespace {

ItemOutput run_heads_item(ItemContext& ctx) {
  const PromptSet& ps = ctx.job.prompts[static_cast<size_t>(ctx.item.prompts)];
  Result<std::vector<PromptRecord>> recs = read_prompts(ps.path);
  if (!recs) throw InputError(recs.error().message, recs.error().code);
  HeadsRunOutcome r = run_heads(*ctx.session, ctx.model, *recs, ctx.item.params);
  ItemOutput out;
  if (r.cancelled) return out;
  // The first detector's best head (one detector per item is the usual grid).
  const at::Tensor& mean = r.scores.front().second;
  const int64_t best = mean.flatten().argmax().item<int64_t>();
  out.summary = {{"top_head", HeadRef{best / mean.size(1), best % mean.size(1)}.name()},
                 {"top_score", mean.flatten()[best].item<double>()}};
  return out;
}

}  // namespace

Analysis heads_analysis() {
  Analysis a = analysis_from_spec(heads_spec());
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    int64_t t = s.max_tokens;
    int64_t mt = p["max_tokens"].get<int64_t>();
    if (mt > 0) t = std::min(t, mt);
    const std::string detect = p["detect"].get<std::string>();
    const double passes = static_cast<double>(std::count(detect.begin(), detect.end(), ',') + 1);
    Estimate e;
    // One layer's full pattern is materialised at a time (score_layers), plus the forward pass.
    e.activation_bytes = forward_activation_bytes(*s.config, t) + 8.0 * static_cast<double>(s.config->n_heads) *
                                                                   static_cast<double>(t) * static_cast<double>(t);
    e.flops = passes * static_cast<double>(s.n_prompts) * forward_flops(*s.config, s.n_params, t);
    return e;
  };
  a.run = run_heads_item;
  return a;
}

}  // namespace ms::app::batch
