// Batch adapter for attention-output SAEs by head: one item = one model on one prompt set with one
// cell of sae_heads_spec's parameters (the SAE a path relative to the job), run and stored by
// run_sae_heads (runs/sae_heads_run.h) as `mechscope sae heads` stores it.
#include "app/batch/batch_analyses.h"
#include "core/io/prompts.h"
#include "runs/sae_heads_run.h"

namespace ms::app::batch {
namespace {

ItemOutput run_sae_heads_item(ItemContext& ctx) {
  const PromptSet& ps = ctx.job.prompts[static_cast<size_t>(ctx.item.prompts)];
  Result<std::vector<PromptRecord>> recs = read_prompts(ps.path);
  if (!recs) throw InputError(recs.error().message, recs.error().code);
  SaeHeadsRunOutcome r = run_sae_heads(*ctx.session, ctx.model, *recs, ctx.item.params);
  ItemOutput out;
  if (r.cancelled) return out;
  const SaeHeadsResult& s = r.result;
  out.summary = {{"layer", s.layer}, {"live", s.n_live}, {"dominated", s.n_dominated},
                 {"polysemantic_heads", s.n_polysemantic}, {"heads", s.n_heads}, {"tokens", s.n_tokens}};
  return out;
}

}  // namespace

Analysis sae_heads_analysis() {
  Analysis a = analysis_from_spec(sae_heads_spec());
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    (void)p;
    const int64_t t = s.max_tokens;
    Estimate e;
    // One forward per prompt and the SAE's activations of one prompt in float64 plus the
    // [d_sae, d_in] firing sums; the SAE's width is not known here (its file is read by the item),
    // so 2^24 features x positions stand for it.
    e.activation_bytes = forward_activation_bytes(*s.config, t) + 3.0 * 8.0 * static_cast<double>(1 << 24);
    e.flops = static_cast<double>(s.n_prompts) * forward_flops(*s.config, s.n_params, t);
    return e;
  };
  a.run = run_sae_heads_item;
  return a;
}

}  // namespace ms::app::batch
