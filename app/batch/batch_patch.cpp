// Batch adapter for activation patching (`mechscope patch`): one item = one model, one task and
// one `what` (resid_pre | attn_out | mlp_out | z | q | k | v | pattern); runs patch_run
// (app/commands/circuit_runs.h) as the command does and stores the same grid, DLA and task tensors.
#include <algorithm>

#include "app/batch/batch_analyses.h"
#include "app/batch/batch_task.h"
#include "app/commands/circuit_runs.h"

namespace ms::app::batch {
namespace {

const std::vector<std::string> kWhat = {"resid_pre", "attn_out", "mlp_out", "z", "q", "k", "v", "pattern"};

bool by_position(const std::string& w) { return w == "resid_pre" || w == "attn_out" || w == "mlp_out"; }

ItemOutput run_patch(ItemContext& ctx) {
  const nlohmann::json& p = ctx.item.params;
  TaskPairs task = make_item_task(ctx.model, p);
  PatchOptions po;
  po.what = p["what"].get<std::string>();
  po.per_position = p["per_position"].get<bool>() && po.what == "z";
  PatchRun pr = patch_run(ctx.model, task, po, ctx.progress, ctx.cancel);
  if (pr.cancelled) return ItemOutput{};
  ItemOutput out = task_item_output(task, std::move(pr.results));
  out.summary = {{"metric_clean", pr.grid.metric_clean}, {"metric_corrupted", pr.grid.metric_corrupted},
                 {"max_cell", pr.grid.values.nan_to_num(-1e300).max().item<double>()}};
  return out;
}

}  // namespace

Analysis patch_analysis() {
  Analysis a = task_analysis(
      "patch", "activation patching grids on a circuit task (as mechscope patch)",
      {{"what", ParamType::kString, "resid_pre", true,
        "resid_pre, attn_out, mlp_out (layer x position); z, q, k, v, pattern (layer x head)"},
       {"per_position", ParamType::kBool, false, true, "z: one cell per layer, head and position (other whats: ignored)"}});
  a.check = [](const nlohmann::json& p, const ModelConfig& c, std::string* param) -> std::string {
    std::string msg = check_task_params(p, c, param);
    if (!msg.empty()) return msg;
    const std::string w = p["what"].get<std::string>();
    if (std::find(kWhat.begin(), kWhat.end(), w) == kWhat.end())
      return *param = "what", "what '" + w + "': expected resid_pre, attn_out, mlp_out, z, q, k, v or pattern";
    if (w == "mlp_out" && c.attn_only()) return *param = "what", "what mlp_out: the model has no MLPs";
    return "";
  };
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
  a.run = run_patch;
  return a;
}

}  // namespace ms::app::batch
