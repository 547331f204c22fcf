// `mechscope sae circuit`: discrete-SAE circuit identification on a circuit task (the task
// options of `mechscope circuit`): the ranked heads, the selected circuit, stored as a run of kind
// "sae-circuit" by run_dsae_circuit (runs/dsae_circuit_run.h), whose spec makes the options.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "app/commands/cli_run.h"
#include "runs/dsae_circuit_run.h"

namespace ms::app {
namespace {

struct Opts : AnalysisOptions {
  int show = 10;
};

std::string head_name(int64_t i, int64_t n_heads) {
  return std::to_string(i / n_heads) + "." + std::to_string(i % n_heads);
}

int run(const Opts& o) {
  nlohmann::json params = o.spec->params();
  CliRun cli(o, "sae circuit");
  const Model* m = cli.model.get();
  DsaeCircuitOutcome r = run_dsae_circuit(cli.session, *m, params);
  cli.bar.finish();
  if (r.cancelled) throw InputError("interrupted; run " + std::to_string(r.run_id) + " marked cancelled", ErrorCode::kInternal);
  const DsaeResult& d = r.result;
  const int64_t H = m->config().n_heads;
  if (o.json) {
    nlohmann::json j = {{"run", r.run_id}, {"task", r.params["task"]}, {"positives", d.positives},
                        {"negatives", d.negatives}, {"recon_fve", d.recon_fve},
                        {"seconds", d.seconds_forward + d.seconds_train}, {"circuit", r.circuit.name}};
    j["heads"] = nlohmann::json::array();
    for (int64_t h : r.heads) j["heads"].push_back(head_name(h, H));
    j["ranking"] = nlohmann::json::array();
    for (int64_t h : d.ranking)
      j["ranking"].push_back({{"head", head_name(h, H)}, {"unique", d.overlap.unique[static_cast<size_t>(h)]},
                              {"fraction", d.overlap.fraction[static_cast<size_t>(h)]}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("run %lld: sae-circuit on %s: %zu positives, %zu negatives; SAE explains %.3f of the variance; %.2f s\n",
              static_cast<long long>(r.run_id), r.params["task"].get<std::string>().c_str(), d.positives.size(),
              d.negatives.size(), d.recon_fve, d.seconds_forward + d.seconds_train);
  std::printf("circuit '%s': %zu heads:", r.circuit.name.c_str(), r.heads.size());
  for (int64_t h : r.heads) std::printf(" %s", head_name(h, H).c_str());
  std::printf("\nranking (codes unique to positives, fraction of all codes):\n");
  for (size_t k = 0; k < d.ranking.size() && static_cast<int>(k) < o.show; ++k) {
    const int64_t h = d.ranking[k];
    std::printf("  %-6s %3lld  %.3f\n", head_name(h, H).c_str(),
                static_cast<long long>(d.overlap.unique[static_cast<size_t>(h)]), d.overlap.fraction[static_cast<size_t>(h)]);
  }
  return 0;
}

}  // namespace

// Called by register_sae (cmd_sae.cpp): `sae circuit` under the `sae` command.
void register_sae_circuit(CLI::App& sae, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = sae.add_subcommand("circuit", "Discrete-SAE circuit identification: heads whose codes occur only on prompts the model gets right");
  add_model_options(*cmd, *o);
  o->spec = std::make_unique<SpecOptions>(*cmd, dsae_circuit_spec());
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  cmd->add_option("--show", o->show, "ranked heads to print")->capture_default_str();
  cmds.emplace_back(cmd, [o]() { return run(*o); });
}

}  // namespace ms::app
