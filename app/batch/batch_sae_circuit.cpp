// Batch adapter for discrete-SAE circuit identification (`mechscope sae circuit`): one item = one
// model, one task and one SAE cell (examples, d_sae, epochs, l1, ...); run and stored by
// run_dsae_circuit (runs/dsae_circuit_run.h) as the command and the workbench store it.
#include "app/batch/batch_analyses.h"
#include "app/batch/batch_task.h"
#include "runs/dsae_circuit_run.h"

namespace ms::app::batch {
namespace {

ItemOutput run_sae_circuit_item(ItemContext& ctx) {
  DsaeCircuitOutcome r = run_dsae_circuit(*ctx.session, ctx.model, ctx.item.params);
  ItemOutput out;
  if (r.cancelled) return out;
  out.summary = {{"heads", r.heads.size()}, {"positives", r.result.positives.size()},
                 {"negatives", r.result.negatives.size()}, {"recon_fve", r.result.recon_fve}};
  return out;
}

}  // namespace

Analysis sae_circuit_analysis() {
  Analysis a = analysis_from_spec(dsae_circuit_spec());
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    const ModelConfig& c = *s.config;
    const TaskSize t = task_size_bound(p, c);
    Estimate e;
    // Two forward passes over the task (clean and corrupted), two over the examples with every
    // head's output cached, then full-batch SAE steps over examples x heads rows.
    const double rows = 2.0 * static_cast<double>(p["examples"].get<int64_t>()) * static_cast<double>(c.n_layers * c.n_heads);
    const double d_sae = static_cast<double>(p["d_sae"].get<int64_t>());
    e.activation_bytes = 2 * task_forward_bytes(t, c) +
                         4.0 * static_cast<double>(t.tokens) * static_cast<double>(c.n_layers * c.n_heads * c.d_model) +
                         8.0 * rows * (static_cast<double>(c.d_model) + d_sae);
    e.flops = 4 * task_forward_flops(t, s) +
              static_cast<double>(p["epochs"].get<int64_t>()) * 6.0 * rows * static_cast<double>(c.d_model) * d_sae;
    return e;
  };
  a.run = run_sae_circuit_item;
  return a;
}

}  // namespace ms::app::batch
