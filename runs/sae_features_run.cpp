// sae_features_spec and run_sae_features: feature dashboards declared once and run the same way
// from the CLI, batch jobs and the workbench.
#include "runs/sae_features_run.h"

#include <algorithm>
#include <set>

#include "core/features/sae_load.h"
#include "core/tokenizer/token_label.h"
#include "runs/run_inputs.h"

namespace ms {

const AnalysisSpec& sae_features_spec() {
  static const AnalysisSpec spec = [] {
    AnalysisSpec s;
    s.kind = "sae-features";
    s.command = "sae features";
    s.summary = "feature dashboards: top-activating contexts, activation histogram, density, logit effects";
    s.uses_prompts = true;
    s.params = {
        {"sae", ParamType::kPath, nullptr, false, "SAELens folder (cfg.json + sae_weights.safetensors), Gemma Scope params.npz, or a per-layer transcoder file (DIR/layer_N.safetensors)"},
        {"hook", ParamType::kString, "", false, "hook point to use instead of the one the SAE names (required for params.npz)"},
        {"norm_scaling_factor", ParamType::kFloat, 0.0, false,
         "for normalize_activations = expected_average_only_in: the factor to fold (0: activation_scaler.json)"},
        {"features", ParamType::kIntList, nlohmann::json::array(), false, "feature indices (default: every feature)"},
        {"top_features", ParamType::kInt, 0, true, "keep the cards of the N features firing most often (0: all chosen)"},
        {"top_k", ParamType::kInt, 20, true, "top-activating examples per feature"},
        {"context", ParamType::kInt, 8, true, "tokens shown on each side of an example's position"},
        {"n_bins", ParamType::kInt, 32, false, "activation histogram bins"},
        {"n_logits", ParamType::kInt, 10, false, "top and bottom logit effects per feature"},
        {"skip_bos", ParamType::kBool, true, false, "leave out position 0 when it holds the BOS token"},
        {"max_tokens", ParamType::kInt, 0, false, "cut each prompt to this many tokens (0: the model's n_ctx)"},
    };
    s.params[2].lo = 0;
    s.params[3].lo = 0;
    s.params[4].lo = 0;
    s.params[5].lo = 1, s.params[5].hi = 10000;
    s.params[6].lo = 0, s.params[6].hi = 4096;
    s.params[7].lo = 1, s.params[7].hi = 4096;
    s.params[8].lo = 0, s.params[8].hi = 10000;
    s.params[9].flag = "--keep-bos";
    s.params[10].lo = 0;
    return s;
  }();
  return spec;
}

std::shared_ptr<Sae> load_sae_from_params(const nlohmann::json& params) {
  SaeLoadOptions lo;
  lo.hook_name = params.value("hook", std::string());
  lo.norm_scaling_factor = params.value("norm_scaling_factor", 0.0);
  auto r = load_sae(params["sae"].get<std::string>(), lo);
  if (!r) throw InputError(r.error().message, r.error().code);
  return std::move(*r);
}

SaeFeaturesRunOutcome run_sae_features(RunSession& session, const Model& m, const std::vector<PromptRecord>& records,
                                       nlohmann::json params) {
  std::string param;
  std::string e = complete_params(sae_features_spec(), kEverywhere, params, &m.config(), &param);
  if (!e.empty()) fail_usage(e);
  if (records.empty()) fail_usage("sae features: no prompts (give --prompts, --text or --tokens)");
  std::shared_ptr<Sae> sae = load_sae_from_params(params);
  Status fits = check_sae_fits(*sae, m);
  if (!fits) throw InputError(fits.error().message, fits.error().code);
  sae->to_device(m.device());

  DashboardOptions o;
  for (const auto& f : params["features"]) o.features.push_back(f.get<int64_t>());
  for (int64_t f : o.features)
    if (f >= sae->cfg.d_sae)
      fail_input(sae->cfg.source + ": feature " + std::to_string(f) + " is out of range; the SAE has d_sae = " +
                 std::to_string(sae->cfg.d_sae) + " features (0.." + std::to_string(sae->cfg.d_sae - 1) + ")");
  o.top_features = params["top_features"].get<int64_t>();
  o.top_k = params["top_k"].get<int>();
  o.context = params["context"].get<int>();
  o.n_bins = params["n_bins"].get<int>();
  o.n_logits = params["n_logits"].get<int>();
  o.skip_bos = params["skip_bos"].get<bool>();

  const int64_t max_tokens = params["max_tokens"].get<int64_t>();
  const int64_t cut = max_tokens > 0 ? std::min<int64_t>(max_tokens, m.config().n_ctx) : m.config().n_ctx;
  std::vector<std::vector<int32_t>> prompts;
  SaeFeaturesRunOutcome out;
  for (size_t i = 0; i < records.size(); ++i) {
    std::vector<int32_t> ids = prompt_tokens(m, records[i]);
    if (static_cast<int64_t>(ids.size()) > cut) ids.resize(static_cast<size_t>(cut));
    if (ids.empty()) fail_usage("sae features: prompt " + std::to_string(i) + " has no tokens");
    out.n_tokens += static_cast<int64_t>(ids.size());
    prompts.push_back(std::move(ids));
  }
  out.n_prompts = static_cast<int64_t>(prompts.size());
  out.params = params;
  out.sae = sae;
  nlohmann::json stored = stored_params(sae_features_spec(), params);
  stored["hook_name"] = sae->cfg.hook_name;
  stored["architecture"] = sae_arch_name(sae->cfg.arch);
  stored["d_sae"] = sae->cfg.d_sae;
  stored["n_prompts"] = out.n_prompts;
  session.begin(m, "sae-features", stored);
  out.cancelled = !session.conclude([&](std::string& reason) -> std::optional<RunResults> {
    DashboardStats st;
    out.cards = feature_dashboards(m, *sae, prompts, o, session.progress_fn(), session.cancel_flag(), &st);
    if (session.cancelled()) {
      reason = "cancelled after " + std::to_string(st.n_tokens) + " of " + std::to_string(out.n_tokens) + " tokens";
      return std::nullopt;
    }
    RunResults res;
    // The prompts the examples come from (their index is the prompt's place in the corpus).
    std::set<int64_t> used;
    for (const FeatureCard& c : out.cards)
      for (const FeatureExample& x : c.examples) used.insert(x.prompt);
    for (int64_t p : used) {
      InputRecord in{static_cast<int>(p), records[static_cast<size_t>(p)].text, prompts[static_cast<size_t>(p)], {}};
      for (int32_t id : in.token_ids) in.tokens.push_back(token_label(m, id));
      res.inputs.push_back(std::move(in));
    }
    res.features = out.cards;
    return res;
  });
  out.run_id = session.run_id();
  return out;
}

}  // namespace ms
