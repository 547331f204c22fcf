// `mechscope sae features`: feature dashboards over a corpus (top-activating contexts, histogram,
// density, logit effects), stored as a "sae-features" run; parameters and run come from
// runs/sae_features_run.h, as for batch jobs and the workbench.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "app/commands/cli_run.h"
#include "runs/sae_features_run.h"

namespace ms::app {
namespace {

struct Opts : AnalysisOptions {
  int show = 10;
};

// "tok tok [tok] tok": the window with the example's token in brackets.
std::string window_text(const FeatureExample& e) {
  std::string s;
  for (size_t i = 0; i < e.tokens.size(); ++i) {
    const bool at = static_cast<int64_t>(i) + e.window_start == e.position;
    s += (i ? "|" : "") + std::string(at ? "[" : "") + e.tokens[i] + (at ? "]" : "");
  }
  std::string out;
  for (char c : s) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return out;
}

nlohmann::json card_json(const FeatureCard& c) {
  nlohmann::json j{{"feature", c.feature}, {"n_tokens", c.n_tokens}, {"n_firing", c.n_firing},
                   {"density", c.density()}, {"max_act", c.max_act}, {"hist_max", c.hist_max},
                   {"histogram", c.histogram}};
  if (c.n_firing > 0) j["log10_density"] = c.log10_density();
  for (const char* side : {"top_logits", "bottom_logits"}) {
    nlohmann::json l = nlohmann::json::array();
    for (const LogitEffect& e : side[0] == 't' ? c.top_logits : c.bottom_logits)
      l.push_back({{"token_id", e.token_id}, {"token", e.token}, {"value", e.value}});
    j[side] = l;
  }
  j["examples"] = nlohmann::json::array();
  for (const FeatureExample& e : c.examples)
    j["examples"].push_back({{"rank", e.rank}, {"prompt", e.prompt}, {"position", e.position},
                             {"activation", e.activation}, {"window_start", e.window_start},
                             {"token_ids", e.token_ids}, {"tokens", e.tokens}, {"acts", e.acts}});
  return j;
}

int run(const Opts& o) {
  std::vector<PromptRecord> records = read_prompt_inputs(o, true);
  nlohmann::json params = o.spec->params();
  CliRun cli(o, "sae features");
  SaeFeaturesRunOutcome r = run_sae_features(cli.session, *cli.model, records, params);
  cli.bar.finish();
  if (r.cancelled)
    throw InputError("interrupted; run " + std::to_string(r.run_id) + " marked cancelled", ErrorCode::kInternal);
  if (o.json) {
    nlohmann::json j{{"run", r.run_id}, {"hook_name", r.sae->cfg.hook_name}, {"n_prompts", r.n_prompts},
                     {"n_tokens", r.n_tokens}, {"cards", nlohmann::json::array()}};
    for (size_t i = 0; i < r.cards.size() && i < static_cast<size_t>(std::max(0, o.show)); ++i)
      j["cards"].push_back(card_json(r.cards[i]));
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::printf("run %lld: %zu feature cards of %s at %s over %lld prompts, %lld tokens\n",
              static_cast<long long>(r.run_id), r.cards.size(), sae_arch_name(r.sae->cfg.arch),
              r.sae->cfg.hook_name.c_str(), static_cast<long long>(r.n_prompts), static_cast<long long>(r.n_tokens));
  for (size_t i = 0; i < r.cards.size() && i < static_cast<size_t>(std::max(0, o.show)); ++i) {
    const FeatureCard& c = r.cards[i];
    std::printf("feature %lld: density %.4g (log10 %.2f), max %.4g\n", static_cast<long long>(c.feature), c.density(),
                c.n_firing > 0 ? c.log10_density() : -INFINITY, c.max_act);
    if (!c.examples.empty())
      std::printf("  top: %.4g  %s\n", c.examples[0].activation, window_text(c.examples[0]).c_str());
    std::string up, down;
    for (const LogitEffect& e : c.top_logits) up += " " + e.token;
    for (const LogitEffect& e : c.bottom_logits) down += " " + e.token;
    if (!c.top_logits.empty()) std::printf("  promotes:%s\n  suppresses:%s\n", up.c_str(), down.c_str());
  }
  if (r.cards.size() > static_cast<size_t>(std::max(0, o.show)))
    std::printf("(%zu more; `mechscope report --run %lld --format html --out F.html` renders the cards)\n", r.cards.size() - static_cast<size_t>(o.show),
                static_cast<long long>(r.run_id));
  return 0;
}

}  // namespace

void register_sae_features(CLI::App& sae, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = sae.add_subcommand("features", "Feature dashboards over a corpus: top contexts, histogram, density, logit effects");
  add_model_options(*cmd, *o);
  o->spec = std::make_unique<SpecOptions>(*cmd, sae_features_spec());
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  add_prompt_inputs(*cmd, *o, "one prompt as text");
  cmd->add_option("--show", o->show, "cards to print")->capture_default_str();
  cmds.emplace_back(cmd, [o]() { return run(*o); });
}

}  // namespace ms::app
