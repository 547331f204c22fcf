// `mechscope sinks`: attention sinks (first-token and hidden), massive activations, per-head sink
// scores stored as a run, and ACT calibration as a linked run; the parameters and the run come
// from runs/sinks_run.h, as for batch jobs and the workbench.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "app/commands/cli_run.h"
#include "app/commands/progress.h"
#include "app/commands/spec_cli.h"
#include "core/io/prompts.h"
#include "runs/sinks_run.h"
#include "storage/database.h"

namespace ms::app {
namespace {

struct Opts : AnalysisOptions {
  int top = 10;
};

// Heads ranked by alpha_0, and hidden sinks counted by token.
struct Tables {
  std::vector<std::pair<double, HeadRef>> ranked;
  std::map<std::string, int> by_token;
};

Tables tables(const SinkReport& rep, const ModelConfig& c) {
  Tables t;
  for (const auto& h : rep.hidden) t.by_token[h.token.empty() ? "<" + std::to_string(h.token_id) + ">" : h.token]++;
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (int64_t h = 0; h < c.n_heads; ++h) t.ranked.push_back({rep.head_alpha0[l][h].item<double>(), {l, h}});
  std::sort(t.ranked.begin(), t.ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : b.second < a.second;
  });
  return t;
}

void print_json(const SinksRunOutcome& r, const Tables& t, size_t top) {
  const SinkReport& rep = r.report;
  nlohmann::json j;
  j["run_id"] = r.run_id;
  j["sink_rate_first_token"] = rep.sink_rate_first;
  j["top_heads"] = nlohmann::json::array();
  for (size_t i = 0; i < std::min(top, t.ranked.size()); ++i)
    j["top_heads"].push_back({{"layer", t.ranked[i].second.layer}, {"head", t.ranked[i].second.head}, {"alpha0", t.ranked[i].first}});
  j["hidden_sinks"] = nlohmann::json::array();
  for (const auto& h : rep.hidden)
    j["hidden_sinks"].push_back({{"prompt", h.prompt}, {"layer", h.layer}, {"head", h.head},
                                 {"position", h.position}, {"token", h.token}, {"alpha", h.alpha}});
  j["hidden_sink_tokens"] = t.by_token;
  j["massive"] = nlohmann::json::array();
  for (const auto& a : rep.massive)
    j["massive"].push_back({{"prompt", a.prompt}, {"layer", a.layer}, {"position", a.position},
                            {"dim", a.dim}, {"token", a.token}, {"value", a.value}, {"ratio", a.ratio_to_median}});
  if (!r.calibration.is_null()) j["calibration"] = r.calibration;
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

void print_text(const SinksRunOutcome& r, const Tables& t, size_t top, const ModelConfig& c) {
  const SinkReport& rep = r.report;
  const SinkOptions defaults;
  std::printf("run %lld: %lld prompts, %lld layers x %lld heads\n", static_cast<long long>(r.run_id),
              static_cast<long long>(rep.n_prompts), static_cast<long long>(c.n_layers), static_cast<long long>(c.n_heads));
  std::printf("first-token sink rate (alpha_0 > %.2f): %.1f%% of (prompt, layer, head)\n",
              r.params["epsilon"].get<double>(), rep.sink_rate_first);
  std::printf("top heads by alpha_0:\n");
  for (size_t i = 0; i < std::min(top, t.ranked.size()); ++i) {
    const HeadRef& h = t.ranked[i].second;
    std::printf("  %lld.%lld  alpha_0 %.3f  sink rate %.0f%%\n", static_cast<long long>(h.layer), static_cast<long long>(h.head),
                t.ranked[i].first, 100 * rep.head_sink_rate[h.layer][h.head].item<double>());
  }
  std::printf("hidden sinks (%s): %zu\n", r.params["hidden_threshold"].get<std::string>().c_str(), rep.hidden.size());
  std::vector<std::pair<int, std::string>> tokens;
  for (const auto& [tok, n] : t.by_token) tokens.push_back({n, tok});
  std::sort(tokens.rbegin(), tokens.rend());
  for (size_t i = 0; i < std::min(top, tokens.size()); ++i)
    std::cout << "  '" << tokens[i].second << "' x" << tokens[i].first << "\n";
  std::printf("massive activations (|h| > %.0f and >= %.0fx the median): %zu\n", defaults.massive_abs,
              defaults.massive_ratio, rep.massive.size());
  for (size_t i = 0; i < std::min(top, rep.massive.size()); ++i) {
    const auto& a = rep.massive[i];
    std::cout << "  layer " << a.layer << " position " << a.position << " ('" << a.token << "') dim " << a.dim
              << " value " << a.value << " (" << static_cast<long long>(a.ratio_to_median) << "x median)\n";
  }
  if (!r.calibration.is_null())
    std::cout << "calibration (run " << r.calibration["run_id"] << ", beta " << r.calibration["beta"].get<double>()
              << ", heads " << r.calibration["heads"].dump() << "): loss " << r.calibration["loss_before"].get<double>()
              << " -> " << r.calibration["loss_after"].get<double>() << "\n";
}

int run(const Opts& o) {
  std::vector<PromptRecord> records = read_prompt_inputs(o, true);
  nlohmann::json params = o.spec->params();
  CliRun cli(o, "sinks");
  const Model* m = cli.model.get();
  SinksRunOutcome r = run_sinks(cli.session, *m, records, params);
  cli.bar.finish();
  if (r.cancelled)
    throw InputError("interrupted; run " + std::to_string(r.run_id) + " marked cancelled", ErrorCode::kInternal);
  Tables t = tables(r.report, m->config());
  const size_t top = static_cast<size_t>(std::max(0, o.top));
  if (o.json) print_json(r, t, top);
  else print_text(r, t, top, m->config());
  return 0;
}

}  // namespace

void register_sinks(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = add_analysis_command(app, sinks_spec(), "Find attention sinks, hidden sinks and massive activations", *o);
  add_prompt_inputs(*cmd, *o, "one prompt");
  cmd->add_option("--top", o->top, "rows to print per table")->capture_default_str();
  cmds.emplace_back(cmd, [o]() { return run(*o); });
}

}  // namespace ms::app
