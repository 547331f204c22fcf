// Batch adapter for the attention-sink analysis: one item = one model on one prompt set with one
// cell of sinks_spec's parameters, run and stored by run_sinks (runs/sinks_run.h) as `mechscope
// sinks` and the workbench store it.
#include <ATen/ATen.h>

#include "app/batch/batch_analyses.h"
#include "core/io/prompts.h"
#include "runs/sinks_run.h"

namespace ms::app::batch {
namespace {

ItemOutput run_sinks_item(ItemContext& ctx) {
  const PromptSet& ps = ctx.job.prompts[static_cast<size_t>(ctx.item.prompts)];
  Result<std::vector<PromptRecord>> recs = read_prompts(ps.path);
  if (!recs) throw InputError(recs.error().message, recs.error().code);
  SinksRunOutcome r = run_sinks(*ctx.session, ctx.model, *recs, ctx.item.params);
  ItemOutput out;
  if (r.cancelled) return out;
  out.summary = {{"sink_rate_first_token", r.report.sink_rate_first}, {"hidden_sinks", r.report.hidden.size()},
                 {"massive", r.report.massive.size()}};
  return out;
}

}  // namespace

Analysis sinks_analysis() {
  Analysis a = analysis_from_spec(sinks_spec());
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    int64_t t = s.max_tokens;
    int64_t mt = p["max_tokens"].get<int64_t>();
    if (mt > 0) t = std::min(t, mt);
    Estimate e;
    // Streamed over query blocks: one forward pass at a time, plus the per-prompt alpha rows.
    e.activation_bytes = forward_activation_bytes(*s.config, t) + 8.0 * 64 * static_cast<double>(s.n_prompts) *
                                                                   static_cast<double>(s.config->n_layers * s.config->n_heads);
    e.flops = static_cast<double>(s.n_prompts) * forward_flops(*s.config, s.n_params, t);
    return e;
  };
  a.run = run_sinks_item;
  return a;
}

}  // namespace ms::app::batch
