// `mechscope heads`: previous-token, duplicate-token and induction head scores (TransformerLens'
// head_detector semantics) on repeated random token sequences or on prompts, stored as per-head
// scores of a run; the parameters and the run come from runs/heads_run.h, as for batch jobs and
// the workbench.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/commands/cli.h"
#include "app/commands/cli_run.h"
#include "app/commands/progress.h"
#include "app/commands/spec_cli.h"
#include "core/io/prompts.h"
#include "runs/heads_run.h"
#include "storage/database.h"

namespace ms::app {
namespace {

struct Opts : AnalysisOptions {
  int top = 5;
};

int run(const Opts& o) {
  std::vector<PromptRecord> records = read_prompt_inputs(o, false);
  nlohmann::json params = o.spec->params();
  CliRun cli(o, "heads");
  const Model* m = cli.model.get();
  HeadsRunOutcome r = run_heads(cli.session, *m, records, params);
  cli.bar.finish();
  if (r.cancelled)
    throw InputError("interrupted; run " + std::to_string(r.run_id) + " marked cancelled", ErrorCode::kInternal);
  nlohmann::json j = {{"run", r.run_id}, {"detectors", nlohmann::json::object()}};
  std::ostringstream text;
  const int64_t n_heads = m->config().n_heads;
  for (const auto& [p, s] : r.scores) {
    std::vector<std::pair<double, int64_t>> ranked;
    at::Tensor flat = s.reshape(-1);
    for (int64_t i = 0; i < flat.numel(); ++i) ranked.push_back({flat[i].item<double>(), i});
    std::sort(ranked.rbegin(), ranked.rend());
    nlohmann::json top = nlohmann::json::array();
    text << head_pattern_name(p) << ":";
    for (size_t k = 0; k < ranked.size() && k < static_cast<size_t>(std::max(0, o.top)); ++k) {
      const int64_t l = ranked[k].second / n_heads, h = ranked[k].second % n_heads;
      top.push_back({{"layer", l}, {"head", h}, {"score", ranked[k].first}});
      char buf[64];
      std::snprintf(buf, sizeof buf, " %lld.%lld (%.3f)", static_cast<long long>(l), static_cast<long long>(h), ranked[k].first);
      text << buf;
    }
    text << "\n";
    j["detectors"][head_pattern_name(p)] = top;
  }
  if (o.json) std::cout << j.dump(2) << "\n";
  else
    std::cout << "run " << r.run_id << ": " << r.n_sequences << (records.empty() ? " repeated sequences" : " prompts")
              << " of up to " << r.n_tokens << " tokens\n" << text.str();
  return 0;
}

}  // namespace

void register_heads(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = add_analysis_command(app, heads_spec(), "Previous-token, duplicate-token and induction head scores", *o);
  add_prompt_inputs(*cmd, *o, "one prompt (default: repeated random token sequences)");
  cmd->add_option("--top", o->top, "heads to print per detector")->capture_default_str();
  cmds.emplace_back(cmd, [o]() { return run(*o); });
}

}  // namespace ms::app
