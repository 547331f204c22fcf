// Batch adapter for activation patching (`mechscope patch`): one item = one model, one task and
// one `what` (resid_pre | attn_out | mlp_out | z | q | k | v | pattern); run and stored by
// run_patch (runs/patch_run.h) as the command and the workbench store it.
#include <algorithm>

#include "app/batch/batch_analyses.h"
#include "app/batch/batch_task.h"
#include "runs/patch_run.h"

namespace ms::app::batch {
namespace {

bool by_position(const std::string& w) { return w == "resid_pre" || w == "attn_out" || w == "mlp_out"; }

ItemOutput run_patch_item(ItemContext& ctx) {
  PatchRunOutcome r = run_patch(*ctx.session, ctx.model, ctx.item.params);
  ItemOutput out;
  if (r.cancelled) return out;
  const PatchGrid& g = r.run.grid;
  out.summary = {{"metric_clean", g.metric_clean}, {"metric_corrupted", g.metric_corrupted},
                 {"max_cell", g.values.nan_to_num(-1e300).max().item<double>()}};
  return out;
}

}  // namespace

Analysis patch_analysis() {
  Analysis a = analysis_from_spec(patch_spec());
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    const ModelConfig& c = *s.config;
    const TaskSize t = task_size_bound(p, c);
    const std::string w = p["what"].get<std::string>();
    int64_t cells = 0, width = 0;  // patched forwards; cached floats per layer, pair and position
    if (by_position(w)) cells = c.n_layers * t.tokens, width = c.d_model;
    else if (w == "k" || w == "v") cells = c.n_layers * c.n_kv_heads, width = c.kv_dim();
    else cells = c.n_layers * c.n_heads, width = w == "pattern" ? c.n_heads * t.tokens : c.q_dim();
    if (w == "z" && p["per_position"].get<bool>()) cells *= t.tokens;
    Estimate e;
    e.activation_bytes = task_forward_bytes(t, c) + 4.0 * static_cast<double>(c.n_layers) * static_cast<double>(t.pairs) *
                                                     static_cast<double>(t.tokens) * static_cast<double>(width);
    e.flops = static_cast<double>(cells + 4) * task_forward_flops(t, s);  // + clean cache, clean, corrupted, DLA
    return e;
  };
  a.run = run_patch_item;
  return a;
}

}  // namespace ms::app::batch
