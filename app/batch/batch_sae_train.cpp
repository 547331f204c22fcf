// Batch adapter for SAE / transcoder training: one item = one model on one prompt set with one cell
// of sae_train_spec's parameters, run and stored by run_sae_train (runs/sae_train_run.h) as
// `mechscope sae train` stores it. Give each cell its own `out` folder.
#include "app/batch/batch_analyses.h"
#include "core/io/prompts.h"
#include "runs/sae_train_run.h"

namespace ms::app::batch {
namespace {

ItemOutput run_sae_train_item(ItemContext& ctx) {
  const PromptSet& ps = ctx.job.prompts[static_cast<size_t>(ctx.item.prompts)];
  Result<std::vector<PromptRecord>> recs = read_prompts(ps.path);
  if (!recs) throw InputError(recs.error().message, recs.error().code);
  SaeTrainRunOutcome r = run_sae_train(*ctx.session, ctx.model, *recs, ctx.item.params);
  ItemOutput out;
  if (r.cancelled) return out;
  out.summary = {{"explained_variance", r.metrics.explained_variance}, {"l0", r.metrics.l0},
                 {"ce_loss_recovered", r.metrics.ce_loss_recovered}, {"out", r.out}};
  return out;
}

}  // namespace

Analysis sae_train_analysis() {
  Analysis a = analysis_from_spec(sae_train_spec());
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    const double d_in = static_cast<double>(s.config->d_model);
    const double d_sae = p["d_sae"].get<int64_t>() > 0 ? static_cast<double>(p["d_sae"].get<int64_t>())
                                                       : d_in * static_cast<double>(p["expansion_factor"].get<int64_t>());
    const double batch = static_cast<double>(p["batch_size"].get<int64_t>());
    Estimate e;
    // Weights, gradients and Adam's two moments (4 copies of the encoder and decoder), plus one
    // batch's pre-activations, activations and their gradients; the store is bounded by memory_mb.
    e.activation_bytes = 4.0 * 4 * 2 * d_in * d_sae + 4.0 * 4 * batch * d_sae +
                         static_cast<double>(p["memory_mb"].get<int64_t>()) * 1048576.0 +
                         forward_activation_bytes(*s.config, s.max_tokens);
    // Five GEMMs of batch x d_in x d_sae a step, and one forward per prompt.
    e.flops = static_cast<double>(p["steps"].get<int64_t>()) * 5 * 2 * batch * d_in * d_sae +
              static_cast<double>(s.n_prompts) * forward_flops(*s.config, s.n_params, s.max_tokens);
    return e;
  };
  a.run = run_sae_train_item;
  return a;
}

}  // namespace ms::app::batch
