// Batch adapter for the attention-sink analysis (core/analysis/sinks/sinks.h): one item = one model on one prompt
// set with one (epsilon, hidden_threshold, max_tokens) cell, stored like `mechscope sinks` does.
#include <ATen/ATen.h>

#include "app/batch/batch_analyses.h"
#include "app/commands/cli.h"
#include "core/io/prompts.h"
#include "core/analysis/sinks/sinks.h"
#include "runs/analysis_runs.h"

namespace ms::app::batch {
namespace {

// "abs:X" / "rel:X" -> (relative, X); false when malformed.
bool parse_hidden(const std::string& h, bool* relative, double* x) {
  size_t colon = h.find(':');
  if (colon == std::string::npos) return false;
  std::string kind = h.substr(0, colon);
  if (kind != "abs" && kind != "rel") return false;
  try {
    size_t used = 0;
    *x = std::stod(h.substr(colon + 1), &used);
    if (used != h.size() - colon - 1 || !(*x >= 0)) return false;
  } catch (const std::exception&) {
    return false;
  }
  *relative = kind == "rel";
  return true;
}

ItemOutput run_sinks(ItemContext& ctx) {
  const nlohmann::json& p = ctx.item.params;
  SinkOptions so;
  so.epsilon = p["epsilon"].get<double>();
  so.max_tokens = p["max_tokens"].get<int64_t>();
  parse_hidden(p["hidden_threshold"].get<std::string>(), &so.hidden_relative, &so.hidden_threshold);
  const PromptSet& ps = ctx.job.prompts[static_cast<size_t>(ctx.item.prompts)];
  Result<std::vector<PromptRecord>> recs = read_prompts(ps.path);
  if (!recs) throw InputError(recs.error().message, recs.error().code);
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& r : *recs) prompts.push_back(r.tokens.empty() ? input_ids(ctx.model, r.text, "") : r.tokens);
  SinkReport rep = analyze_sinks(ctx.model, prompts, so, ctx.progress, ctx.cancel);
  ItemOutput out;
  if (rep.n_prompts < static_cast<int64_t>(prompts.size())) return out;  // cancelled
  std::vector<std::string> texts;
  for (const auto& r : *recs) texts.push_back(r.text);
  out.results = sink_run_results(rep, texts, prompts, [&](int32_t id) { return token_label(ctx.model, id); });
  out.summary = {{"sink_rate_first_token", rep.sink_rate_first}, {"hidden_sinks", rep.hidden.size()},
                 {"massive", rep.massive.size()}};
  return out;
}

}  // namespace

Analysis sinks_analysis() {
  Analysis a;
  a.kind = "sinks";
  a.summary = "attention sinks, hidden sinks and massive activations over a prompt set";
  a.uses_prompts = true;
  a.params = {
      {"epsilon", ParamType::kFloat, 0.3, true, "a head has a sink at key k when alpha_k > epsilon"},
      {"hidden_threshold", ParamType::kString, "abs:0.1", true, "hidden sinks: abs:X or rel:X"},
      {"max_tokens", ParamType::kInt, 0, true, "truncate prompts to this many tokens (0: no limit)"},
  };
  a.check = [](const nlohmann::json& p, const ModelConfig&, std::string* param) -> std::string {
    double e = p["epsilon"].get<double>();
    if (!(e > 0 && e < 1)) return *param = "epsilon", "epsilon must be in (0, 1), not " + std::to_string(e);
    bool rel = false;
    double x = 0;
    if (!parse_hidden(p["hidden_threshold"].get<std::string>(), &rel, &x))
      return *param = "hidden_threshold", "hidden_threshold '" + p["hidden_threshold"].get<std::string>() + "': expected abs:X or rel:X";
    if (p["max_tokens"].get<int64_t>() < 0) return *param = "max_tokens", "max_tokens must not be negative";
    return "";
  };
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
  a.run = run_sinks;
  return a;
}

}  // namespace ms::app::batch
