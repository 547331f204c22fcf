// Batch adapter for the head detectors (core/analysis/heads/head_detectors.h, TransformerLens' head_detector
// semantics): one item = one model on one prompt set with one (pattern, error measure, exclusions)
// cell; the score of every head is the mean over the prompts, stored as the pattern's metric.
#include <ATen/ATen.h>

#include "app/batch/batch_analyses.h"
#include "app/commands/cli.h"
#include "core/analysis/heads/head_detectors.h"
#include "core/base/head_ref.h"
#include "core/io/prompts.h"

namespace ms::app::batch {
namespace {

ItemOutput run_heads(ItemContext& ctx) {
  const nlohmann::json& p = ctx.item.params;
  Result<HeadPattern> pattern = parse_head_pattern(p["pattern"].get<std::string>());
  if (!pattern) throw InputError(pattern.error().message, pattern.error().code);
  DetectOptions opts;
  opts.exclude_bos = p["exclude_bos"].get<bool>();
  opts.exclude_current_token = p["exclude_current_token"].get<bool>();
  opts.error_measure = p["error_measure"].get<std::string>() == "abs" ? ErrorMeasure::kAbs : ErrorMeasure::kMul;
  const int64_t max_tokens = p["max_tokens"].get<int64_t>();
  const PromptSet& ps = ctx.job.prompts[static_cast<size_t>(ctx.item.prompts)];
  Result<std::vector<PromptRecord>> recs = read_prompts(ps.path);
  if (!recs) throw InputError(recs.error().message, recs.error().code);
  ItemOutput out;
  std::vector<at::Tensor> per_prompt;
  const int64_t n = static_cast<int64_t>(recs->size());
  for (int64_t i = 0; i < n; ++i) {
    if (ctx.cancel && *ctx.cancel) return ItemOutput{};
    const PromptRecord& r = (*recs)[static_cast<size_t>(i)];
    std::vector<int32_t> ids = r.tokens.empty() ? input_ids(ctx.model, r.text, "") : r.tokens;
    if (max_tokens > 0 && static_cast<int64_t>(ids.size()) > max_tokens) ids.resize(static_cast<size_t>(max_tokens));
    Result<at::Tensor> s = detect_heads(ctx.model, ctx.model.tokens_tensor(ids), *pattern, opts);  // (layer, head)
    if (!s) throw InputError(s.error().message, s.error().code);
    per_prompt.push_back(*s);
    InputRecord in{static_cast<int>(i), r.text, ids, {}};
    for (int32_t id : ids) in.tokens.push_back(token_label(ctx.model, id));
    out.results.inputs.push_back(std::move(in));
    if (ctx.progress) ctx.progress(i + 1, n);
  }
  at::Tensor all = at::stack(per_prompt);  // (prompt, layer, head)
  at::Tensor mean = all.mean(0);
  out.results.scores.push_back(head_scores_from_tensor(head_pattern_name(*pattern), mean));
  out.results.tensors.push_back({"per_prompt", all, R"({"kind":"head-score","axes":["prompt","layer","head"]})"});
  auto best = mean.flatten().argmax().item<int64_t>();
  out.summary = {{"top_head", HeadRef{best / mean.size(1), best % mean.size(1)}.name()},
                 {"top_score", mean.flatten()[best].item<double>()}};
  return out;
}

}  // namespace

Analysis heads_analysis() {
  Analysis a;
  a.kind = "heads";
  a.summary = "previous-token, duplicate-token and induction head scores over a prompt set";
  a.uses_prompts = true;
  a.params = {
      {"pattern", ParamType::kString, "induction_head", true,
       "previous_token_head, duplicate_token_head or induction_head"},
      {"error_measure", ParamType::kString, "mul", true, "mul or abs (TransformerLens)"},
      {"exclude_bos", ParamType::kBool, false, true, "ignore attention to position 0"},
      {"exclude_current_token", ParamType::kBool, false, true, "ignore each query's attention to itself"},
      {"max_tokens", ParamType::kInt, 0, false, "truncate prompts to this many tokens (0: no limit)"},
  };
  a.check = [](const nlohmann::json& p, const ModelConfig&, std::string* param) -> std::string {
    if (!parse_head_pattern(p["pattern"].get<std::string>()))
      return *param = "pattern", "pattern '" + p["pattern"].get<std::string>() +
                                     "': expected previous_token_head, duplicate_token_head or induction_head";
    std::string em = p["error_measure"].get<std::string>();
    if (em != "mul" && em != "abs") return *param = "error_measure", "error_measure '" + em + "': expected mul or abs";
    if (p["max_tokens"].get<int64_t>() < 0) return *param = "max_tokens", "max_tokens must not be negative";
    return "";
  };
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    int64_t t = s.max_tokens;
    int64_t mt = p["max_tokens"].get<int64_t>();
    if (mt > 0) t = std::min(t, mt);
    Estimate e;
    // One layer's full pattern is materialised at a time (layer_attention), plus the forward pass.
    e.activation_bytes = forward_activation_bytes(*s.config, t) + 8.0 * static_cast<double>(s.config->n_heads) *
                                                                   static_cast<double>(t) * static_cast<double>(t);
    e.flops = static_cast<double>(s.n_prompts) * static_cast<double>(s.config->n_layers) *
              forward_flops(*s.config, s.n_params, t);
    return e;
  };
  a.run = run_heads;
  return a;
}

}  // namespace ms::app::batch
