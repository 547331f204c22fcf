// sae_heads_spec and run_sae_heads: direct feature attribution by head for hook_z SAEs, declared
// once and run the same way from the CLI, batch jobs and the workbench.
#include "runs/sae_heads_run.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>

#include "core/features/sae_load.h"
#include "core/model/model.h"
#include "runs/run_inputs.h"
#include "runs/sae_features_run.h"

namespace ms {
namespace {

// [n_layers, n_heads] with the layer's row from v [n_heads] and NaN elsewhere (not computed).
at::Tensor layer_scores(const ModelConfig& c, int64_t layer, const at::Tensor& v) {
  at::Tensor t = at::full({c.n_layers, c.n_heads}, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
  t[layer].copy_(v.to(at::kDouble));
  return t;
}

}  // namespace

const AnalysisSpec& sae_heads_spec() {
  static const AnalysisSpec spec = [] {
    AnalysisSpec s;
    s.kind = "sae-heads";
    s.command = "sae heads";
    s.summary = "hook_z SAE features attributed to the heads that write them; features each head dominates";
    s.uses_prompts = true;
    s.params = {
        {"sae", ParamType::kPath, nullptr, false, "SAELens folder or params.npz of an SAE on blocks.L.attn.hook_z"},
        {"hook", ParamType::kString, "", false, "hook point to use instead of the one the SAE names (required for params.npz)"},
        {"norm_scaling_factor", ParamType::kFloat, 0.0, false,
         "for normalize_activations = expected_average_only_in: the factor to fold (0: activation_scaler.json)"},
        {"dominance", ParamType::kFloat, 0.5, true, "a head dominates a feature when it writes this share of its positive head attribution"},
        {"min_firing", ParamType::kInt, 1, true, "a feature is live when it fires on at least this many positions"},
        {"polysemantic_min", ParamType::kInt, 2, true, "a head dominating this many features counts as polysemantic"},
        {"skip_bos", ParamType::kBool, true, false, "leave out position 0 when it holds the BOS token"},
        {"max_tokens", ParamType::kInt, 0, false, "cut each prompt to this many tokens (0: the model's n_ctx)"},
    };
    s.params[2].lo = 0;
    s.params[3].lo = 0, s.params[3].hi = 1, s.params[3].lo_open = true;
    s.params[4].lo = 1;
    s.params[5].lo = 1;
    s.params[6].flag = "--keep-bos";
    s.params[7].lo = 0;
    return s;
  }();
  return spec;
}

SaeHeadsRunOutcome run_sae_heads(RunSession& session, const Model& m, const std::vector<PromptRecord>& records,
                                 nlohmann::json params) {
  std::string param;
  std::string e = complete_params(sae_heads_spec(), kEverywhere, params, &m.config(), &param);
  if (!e.empty()) fail_usage(e);
  if (records.empty()) fail_usage("sae heads: no prompts (give --prompts, --text or --tokens)");
  std::shared_ptr<Sae> sae = load_sae_from_params(params);
  const ModelConfig& c = m.config();
  Status head_sae = check_head_sae(*sae, c.n_heads, c.d_head);
  if (!head_sae) throw InputError(head_sae.error().message, head_sae.error().code);
  Status fits = check_sae_fits(*sae, m);
  if (!fits) throw InputError(fits.error().message, fits.error().code);
  sae->to_device(m.device());

  SaeHeadsOptions o;
  o.skip_bos = params["skip_bos"].get<bool>();
  o.min_firing = params["min_firing"].get<int64_t>();
  o.dominance = params["dominance"].get<double>();
  o.polysemantic_min = params["polysemantic_min"].get<int64_t>();
  const int64_t max_tokens = params["max_tokens"].get<int64_t>();
  const int64_t cut = max_tokens > 0 ? std::min<int64_t>(max_tokens, c.n_ctx) : c.n_ctx;
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < records.size(); ++i) {
    std::vector<int32_t> ids = prompt_tokens(m, records[i]);
    if (static_cast<int64_t>(ids.size()) > cut) ids.resize(static_cast<size_t>(cut));
    if (ids.empty()) fail_usage("sae heads: prompt " + std::to_string(i) + " has no tokens");
    prompts.push_back(std::move(ids));
  }
  SaeHeadsRunOutcome out;
  out.n_prompts = static_cast<int64_t>(prompts.size());
  out.params = params;
  out.sae = sae;
  nlohmann::json stored = stored_params(sae_heads_spec(), params);
  stored["hook_name"] = sae->cfg.hook_name;
  stored["architecture"] = sae_arch_name(sae->cfg.arch);
  stored["d_sae"] = sae->cfg.d_sae;
  stored["n_prompts"] = out.n_prompts;
  session.begin(m, "sae-heads", stored);
  out.cancelled = !session.conclude([&](std::string& reason) -> std::optional<RunResults> {
    SaeHeadsResult r = sae_heads(m, *sae, prompts, o, session.progress_fn(), session.cancel_flag());
    if (session.cancelled()) {
      reason = "cancelled after " + std::to_string(r.n_tokens) + " tokens";
      return std::nullopt;
    }
    RunResults res;
    res.scores.push_back(head_scores_from_tensor("sae_dominated_features", layer_scores(c, r.layer, r.dominated)));
    res.scores.push_back(head_scores_from_tensor("sae_activation_share", layer_scores(c, r.layer, r.activation_share)));
    const std::string layer = std::to_string(r.layer);
    res.tensors.push_back({"feature_head_fraction", r.head_fraction,
                           R"({"kind":"sae-heads","layer":)" + layer + R"(,"axes":["feature","head"]})"});
    res.tensors.push_back({"feature_decoder_fraction", r.decoder_fraction,
                           R"({"kind":"sae-heads","layer":)" + layer + R"(,"axes":["feature","head"]})"});
    at::Tensor stats = at::stack({r.n_firing.to(at::kDouble), r.act_sum, r.bias_fraction, r.dominant_head.to(at::kDouble),
                                  r.dominant_share}, 1);
    res.tensors.push_back({"feature_head_stats", stats,
                           R"({"kind":"sae-heads","layer":)" + layer +
                               R"(,"axes":["feature","stat"],"columns":["n_firing","act_sum","bias_fraction","dominant_head","dominant_share"]})"});
    at::Tensor summary = at::tensor({static_cast<double>(r.n_tokens), static_cast<double>(r.n_live),
                                     static_cast<double>(r.n_dominated), static_cast<double>(r.n_polysemantic), r.max_sum_error},
                                    at::kDouble);
    res.tensors.push_back({"sae_heads_summary", summary,
                           R"({"kind":"sae-heads","columns":["n_tokens","n_live","n_dominated","n_polysemantic","max_sum_error"]})"});
    out.result = std::move(r);
    return res;
  });
  out.run_id = session.run_id();
  return out;
}

}  // namespace ms
