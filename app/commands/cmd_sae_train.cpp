// `mechscope sae train`: train an SAE or transcoder on a hook point of the model over a prompt
// file and write it as an SAELens folder; the parameters and the stored run come from
// runs/sae_train_run.h, as for batch jobs. Ctrl-C leaves a checkpoint; --resume continues it.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "app/commands/cli_run.h"
#include "app/commands/progress.h"
#include "app/commands/spec_cli.h"
#include "runs/sae_train_run.h"

namespace ms::app {
namespace {

int run(const AnalysisOptions& o) {
  std::vector<PromptRecord> records = read_prompt_inputs(o, true);
  nlohmann::json params = o.spec->params();
  CliRun cli(o, "sae train");
  SaeTrainRunOutcome r = run_sae_train(cli.session, *cli.model, records, params);
  cli.bar.finish();
  if (r.cancelled && r.train.steps_done == 0)
    throw InputError("interrupted before training began; run " + std::to_string(r.run_id) + " marked cancelled",
                     ErrorCode::kInternal);
  if (r.cancelled)
    throw InputError("interrupted at step " + std::to_string(r.train.steps_done) + "; run " + std::to_string(r.run_id) +
                     " marked cancelled; a checkpoint is in " + r.out + "/checkpoints: rerun with --resume",
                     ErrorCode::kInternal);
  const SaeMetrics& mt = r.metrics;
  if (o.json) {
    nlohmann::json curve = nlohmann::json::array();
    for (const SaeTrainPoint& p : r.train.curve)
      curve.push_back({{"step", p.step}, {"mse", p.mse}, {"explained_variance", p.explained_variance}, {"l0", p.l0},
                       {"dead_features", p.dead_features}, {"aux_loss", p.aux_loss}, {"lr", p.lr}});
    nlohmann::json j{{"run", r.run_id}, {"out", r.out}, {"architecture", sae_arch_name(r.train.sae->cfg.arch)},
                     {"d_in", r.train.sae->cfg.d_in}, {"d_sae", r.train.sae->cfg.d_sae},
                     {"train_tokens", r.n_train_tokens}, {"train_prompts", r.n_train_prompts},
                     {"eval_prompts", r.n_eval_prompts}, {"store_on_disk", r.store_on_disk},
                     {"steps", r.train.steps_done}, {"resumed_from", r.train.resumed_from},
                     {"seconds", r.train.seconds}, {"norm_scaling_factor", r.train.norm_scaling_factor},
                     {"l0", mt.l0}, {"explained_variance", mt.explained_variance}, {"mse", mt.mse},
                     {"ce_clean", mt.ce_clean}, {"ce_spliced", mt.ce_spliced}, {"ce_zero_ablated", mt.ce_zero_ablated},
                     {"ce_loss_recovered", mt.ce_loss_recovered}, {"dead_features", mt.dead_features},
                     {"curve", curve}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  const SaeConfig& c = r.train.sae->cfg;
  std::printf("run %lld: %s SAE, d_in %lld, d_sae %lld at %s; %lld positions from %lld prompts%s; %lld steps in %.1f s%s\n",
              static_cast<long long>(r.run_id), sae_arch_name(c.arch), static_cast<long long>(c.d_in),
              static_cast<long long>(c.d_sae), c.hook_name.c_str(), static_cast<long long>(r.n_train_tokens),
              static_cast<long long>(r.n_train_prompts), r.store_on_disk ? " (on disk)" : "",
              static_cast<long long>(r.train.steps_done), r.train.seconds,
              r.train.resumed_from > 0 ? (" (resumed at " + std::to_string(r.train.resumed_from) + ")").c_str() : "");
  std::printf("%8s %10s %8s %8s %6s\n", "step", "MSE", "EV", "L0", "dead");
  for (const SaeTrainPoint& p : r.train.curve)
    std::printf("%8lld %10.4g %8.4f %8.2f %6lld\n", static_cast<long long>(p.step), p.mse, p.explained_variance, p.l0,
                static_cast<long long>(p.dead_features));
  std::printf("on %lld held-out prompts (%lld positions): L0 %.2f, explained variance %.4f, CE loss recovered %.4f "
              "(clean %.4f, spliced %.4f, zero-ablated %.4f nats), %lld dead features\n",
              static_cast<long long>(mt.n_prompts), static_cast<long long>(mt.n_tokens), mt.l0, mt.explained_variance,
              mt.ce_loss_recovered, mt.ce_clean, mt.ce_spliced, mt.ce_zero_ablated,
              static_cast<long long>(mt.dead_features));
  std::printf("wrote %s (SAELens layout: cfg.json, sae_weights.safetensors)\n", r.out.c_str());
  return 0;
}

}  // namespace

// Called by register_sae (cmd_sae.cpp): `sae train` under the `sae` command.
void register_sae_train(CLI::App& sae, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<AnalysisOptions>();
  CLI::App* cmd = sae.add_subcommand("train", "Train an SAE or transcoder on a hook point; writes an SAELens folder");
  add_model_options(*cmd, *o);
  o->spec = std::make_unique<SpecOptions>(*cmd, sae_train_spec());
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  add_prompt_inputs(*cmd, *o, "one prompt as text");
  cmds.emplace_back(cmd, [o]() { return run(*o); });
}

}  // namespace ms::app
