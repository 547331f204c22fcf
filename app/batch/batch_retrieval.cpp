// Batch adapter for retrieval heads: one item = one model with one cell of retrieval_spec's
// parameters (`lengths = [[256], [512]]` makes one item per length list), run and stored by
// run_retrieval (runs/retrieval_run.h) as `mechscope retrieval` and the workbench store it; the
// item resumes as a whole.
#include <ATen/ATen.h>

#include "app/batch/batch_analyses.h"
#include "core/analysis/retrieval/needle.h"
#include "runs/retrieval_run.h"

namespace ms::app::batch {
namespace {

ItemOutput run_retrieval_item(ItemContext& ctx) {
  RetrievalRunOutcome r = run_retrieval(*ctx.session, ctx.model, ctx.item.params);
  ItemOutput out;
  if (r.cancelled) return out;
  const double acc = r.report.accuracy.mean().item<double>();
  out.summary = {{"accuracy", acc}, {"tests", r.report.n_tests}, {"retrieval_heads", heads_text(r.retrieval_heads)}};
  for (const RetrievalConditionResult& cd : r.conditions)
    out.summary["accuracy_" + cd.name] = cd.accuracy.mean().item<double>();
  return out;
}

}  // namespace

Analysis retrieval_analysis() {
  Analysis a = analysis_from_spec(retrieval_spec());
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    const ModelConfig& c = *s.config;
    std::vector<int64_t> lengths = p["lengths"].get<std::vector<int64_t>>();
    if (lengths.empty()) lengths = default_lengths_for(c.n_ctx);
    const int64_t max_new = p["max_new"].get<int64_t>();
    const double per_length = static_cast<double>(p["depths"].get<int64_t>()) *
                              static_cast<double>(std::max<int64_t>(4, p["id_needles"].get<int64_t>()));
    const double conditions = 1.0 + (p["mask_top"].get<int64_t>() > 0 ? 1 : 0) +
                              (p["mask_random"].get<int64_t>() > 0 ? static_cast<double>(p["seeds"].get<int64_t>()) : 0);
    Estimate e;
    for (int64_t l : lengths) {
      const int64_t t = std::min(c.n_ctx, l + max_new);
      e.activation_bytes = std::max(e.activation_bytes, forward_activation_bytes(c, t));
      e.flops += conditions * per_length *
                 (forward_flops(c, s.n_params, t) + static_cast<double>(max_new) * forward_flops(c, s.n_params, 1));
    }
    return e;
  };
  a.run = run_retrieval_item;
  return a;
}

}  // namespace ms::app::batch
