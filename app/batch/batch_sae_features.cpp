// Batch adapter for SAE feature dashboards: one item = one model on one prompt set with one cell
// of sae_features_spec's parameters (the SAE a path relative to the job), run and stored by
// run_sae_features (runs/sae_features_run.h) as `mechscope sae features` stores it.
#include <algorithm>

#include "app/batch/batch_analyses.h"
#include "core/io/prompts.h"
#include "runs/sae_features_run.h"

namespace ms::app::batch {
namespace {

ItemOutput run_sae_features_item(ItemContext& ctx) {
  const PromptSet& ps = ctx.job.prompts[static_cast<size_t>(ctx.item.prompts)];
  Result<std::vector<PromptRecord>> recs = read_prompts(ps.path);
  if (!recs) throw InputError(recs.error().message, recs.error().code);
  SaeFeaturesRunOutcome r = run_sae_features(*ctx.session, ctx.model, *recs, ctx.item.params);
  ItemOutput out;
  if (r.cancelled) return out;
  int64_t dead = 0;
  const FeatureCard* busiest = nullptr;
  for (const FeatureCard& c : r.cards) {
    dead += c.n_firing == 0;
    if (!busiest || c.n_firing > busiest->n_firing) busiest = &c;
  }
  out.summary = {{"cards", r.cards.size()}, {"dead", dead}, {"tokens", r.n_tokens}};
  if (busiest) out.summary["densest"] = {{"feature", busiest->feature}, {"density", busiest->density()}};
  return out;
}

}  // namespace

Analysis sae_features_analysis() {
  Analysis a = analysis_from_spec(sae_features_spec());
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    (void)p;
    const int64_t t = s.max_tokens;
    Estimate e;
    // One encode batch of about 2^25 feature activations (float32) and its copies, plus a
    // forward; the SAE's weights are not known here (its file is read by the item).
    e.activation_bytes = forward_activation_bytes(*s.config, t) + 4.0 * 4.0 * static_cast<double>(1 << 25);
    e.flops = static_cast<double>(s.n_prompts) * forward_flops(*s.config, s.n_params, t);
    return e;
  };
  a.run = run_sae_features_item;
  return a;
}

}  // namespace ms::app::batch
