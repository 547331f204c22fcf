// `mechscope sae heads`: a hook_z SAE's features attributed to the heads that write them (direct
// feature attribution by head, Kissane et al.) over a corpus, stored as a "sae-heads" run;
// parameters and run come from runs/sae_heads_run.h, as for batch jobs and the workbench.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "app/commands/cli_run.h"
#include "runs/sae_heads_run.h"

namespace ms::app {
namespace {

struct Opts : AnalysisOptions {
  int show = 10;
};

std::vector<double> doubles(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous().cpu();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// The live features by activation sum, largest first.
std::vector<int64_t> busiest_features(const SaeHeadsResult& s) {
  std::vector<double> act = doubles(s.act_sum);
  std::vector<int64_t> idx;
  for (int64_t f = 0; f < s.d_sae; ++f)
    if (s.dominant_head[f].item<int64_t>() >= 0) idx.push_back(f);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return act[a] > act[b]; });
  return idx;
}

int run(const Opts& o) {
  std::vector<PromptRecord> records = read_prompt_inputs(o, true);
  nlohmann::json params = o.spec->params();
  CliRun cli(o, "sae heads");
  SaeHeadsRunOutcome r = run_sae_heads(cli.session, *cli.model, records, params);
  cli.bar.finish();
  if (r.cancelled)
    throw InputError("interrupted; run " + std::to_string(r.run_id) + " marked cancelled", ErrorCode::kInternal);
  const SaeHeadsResult& s = r.result;
  const std::vector<int64_t> top = busiest_features(s);
  const size_t n_show = std::min(top.size(), static_cast<size_t>(std::max(0, o.show)));
  if (o.json) {
    nlohmann::json j{{"run", r.run_id}, {"hook_name", r.sae->cfg.hook_name}, {"layer", s.layer},
                     {"n_prompts", r.n_prompts}, {"n_tokens", s.n_tokens}, {"d_sae", s.d_sae}, {"n_live", s.n_live},
                     {"n_dominated", s.n_dominated}, {"n_polysemantic", s.n_polysemantic},
                     {"max_sum_error", s.max_sum_error}, {"dominated", doubles(s.dominated)},
                     {"activation_share", doubles(s.activation_share)}, {"features", nlohmann::json::array()}};
    for (size_t i = 0; i < n_show; ++i) {
      const int64_t f = top[i];
      j["features"].push_back({{"feature", f}, {"n_firing", s.n_firing[f].item<int64_t>()},
                               {"act_sum", s.act_sum[f].item<double>()},
                               {"dominant_head", s.dominant_head[f].item<int64_t>()},
                               {"dominant_share", s.dominant_share[f].item<double>()},
                               {"head_fraction", doubles(s.head_fraction[f])},
                               {"bias_fraction", s.bias_fraction[f].item<double>()}});
    }
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("run %lld: %s at %s, %lld features over %lld prompts, %lld tokens; %lld live\n",
              static_cast<long long>(r.run_id), sae_arch_name(r.sae->cfg.arch), r.sae->cfg.hook_name.c_str(),
              static_cast<long long>(s.d_sae), static_cast<long long>(r.n_prompts), static_cast<long long>(s.n_tokens),
              static_cast<long long>(s.n_live));
  std::printf("head  dominated  activation share\n");
  for (int64_t h = 0; h < s.n_heads; ++h)
    std::printf("%lld.%lld %10lld  %16.3f\n", static_cast<long long>(s.layer), static_cast<long long>(h),
                static_cast<long long>(s.dominated[h].item<int64_t>()), s.activation_share[h].item<double>());
  std::printf("%lld of %lld live features have a dominant head (share >= %g); %lld of %lld heads dominate >= %lld "
              "features (polysemantic candidates)\n",
              static_cast<long long>(s.n_dominated), static_cast<long long>(s.n_live), r.params["dominance"].get<double>(),
              static_cast<long long>(s.n_polysemantic), static_cast<long long>(s.n_heads),
              static_cast<long long>(r.params["polysemantic_min"].get<int64_t>()));
  for (size_t i = 0; i < n_show; ++i) {
    const int64_t f = top[i];
    std::printf("feature %lld: fires %lld, head %lld.%lld writes %.0f%% of the positive head attribution; fractions",
                static_cast<long long>(f), static_cast<long long>(s.n_firing[f].item<int64_t>()),
                static_cast<long long>(s.layer), static_cast<long long>(s.dominant_head[f].item<int64_t>()),
                100.0 * s.dominant_share[f].item<double>());
    for (double v : doubles(s.head_fraction[f])) std::printf(" %.2f", v);
    std::printf(", bias %.2f\n", s.bias_fraction[f].item<double>());
  }
  std::printf("max |sum of head parts + bias - activation| / activation: %.2e\n", s.max_sum_error);
  return 0;
}

}  // namespace

void register_sae_heads(CLI::App& sae, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = sae.add_subcommand("heads", "A hook_z SAE's features attributed to the heads that write them");
  add_model_options(*cmd, *o);
  o->spec = std::make_unique<SpecOptions>(*cmd, sae_heads_spec());
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  add_prompt_inputs(*cmd, *o, "one prompt as text");
  cmd->add_option("--show", o->show, "features to print (the ones with the most activation)")->capture_default_str();
  cmds.emplace_back(cmd, [o]() { return run(*o); });
}

}  // namespace ms::app
