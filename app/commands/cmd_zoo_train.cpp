// `mechscope zoo train NAME --out DIR`: trains a zoo model with known mechanisms (induction,
// retrieval, default) with a progress bar on stderr; Ctrl-C stops it and writes nothing.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "app/commands/cli.h"
#include "core/base/atomic_file.h"
#include "core/model/model.h"
#include "core/zoo/zoo_trained.h"
#include "runs/run_control.h"

namespace ms::app {
namespace {

std::string bar(double frac, int width) {
  const int full = static_cast<int>(frac * width + 0.5);
  return std::string(static_cast<size_t>(full), '#') + std::string(static_cast<size_t>(width - full), '.');
}

}  // namespace

// `mechscope zoo measure DIR`: measures a trained zoo model's mechanisms again, as train_zoo does
// (same probes, same seed), prints them and with --update writes them into its zoo.json.
void register_zoo_measure(CLI::App& zoo, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  struct Opts {
    std::string dir;
    bool update = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = zoo.add_subcommand("measure", "Measure a trained zoo model's mechanisms again (from its zoo.json recipe)");
  cmd->add_option("dir", o->dir, "the model folder (with zoo.json)")->required();
  cmd->add_flag("--update", o->update, "write the measurements into zoo.json (atomically)");
  cmds.emplace_back(cmd, [o]() {
    const std::string path = o->dir + "/zoo.json";
    std::ifstream in(path);
    if (!in) fail_input(path + ": cannot be read (not a trained zoo model?)");
    nlohmann::json zoo;
    try {
      zoo = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      fail_input(path + ": " + e.what());
    }
    if (!zoo.contains("name") || !zoo.contains("data_seed"))
      fail_input(path + ": needs name and data_seed (written by `mechscope zoo train`)");
    Result<ZooRecipe> recipe = zoo_recipe(zoo["name"].get<std::string>());
    if (!recipe) throw InputError(path + ": " + recipe.error().message, ErrorCode::kBadInput);
    Result<std::unique_ptr<Model>> m = Model::load(o->dir);
    if (!m) throw InputError(m.error().message, m.error().code);
    Result<nlohmann::json> measured = measure_zoo_model(zoo["name"].get<std::string>(), **m,
                                                        zoo["data_seed"].get<uint64_t>() + kZooMeasureSeedOffset,
                                                        zoo.value("eval_batch", recipe->eval_batch));
    if (!measured) throw InputError(measured.error().message, measured.error().code);
    std::cout << measured->dump(2) << "\n";
    if (o->update) {
      zoo["measured"] = *measured;
      write_file_atomic(path, zoo.dump(2) + "\n");
      std::cerr << "updated " << path << "\n";
    }
    return 0;
  });
}

void register_zoo_train(CLI::App& zoo, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  register_zoo_measure(zoo, cmds);
  struct Opts {
    std::string name, out;
    int64_t steps = 0;
    uint64_t seed = 1;
    int threads = 0;
    bool force = false;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = zoo.add_subcommand("train", "Train a zoo model with known mechanisms (induction, retrieval, default)");
  cmd->add_option("name", o->name, "induction, retrieval or default")->required();
  cmd->add_option("--out,-o", o->out, "output folder (written atomically)")->required();
  cmd->add_option("--steps", o->steps, "training steps (0: the recipe's)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the weights and the data")->capture_default_str();
  cmd->add_option("--threads", o->threads, "intra-op threads (0: the recipe's, 1); results depend on it")->capture_default_str();
  cmd->add_flag("--force", o->force, "replace an existing folder");
  cmd->add_flag("--quiet,-q", o->quiet, "no progress output");
  cmds.emplace_back(cmd, [o]() {
    Result<ZooRecipe> rr = zoo_recipe(o->name, o->seed);
    if (!rr) throw InputError(rr.error().message, rr.error().code);
    ZooRecipe recipe = *rr;
    if (o->steps < 0 || o->threads < 0) fail_usage("--steps and --threads must not be negative");
    if (o->steps > 0) recipe.train.steps = o->steps;
    if (o->threads > 0) recipe.train.threads = o->threads;
    recipe.train.warmup = std::min(recipe.train.warmup, std::max<int64_t>(1, recipe.train.steps / 10));

    ZooTrainSettings s;
    s.overwrite = o->force;
    s.command = "mechscope zoo train " + o->name + " --out " + o->out + " --seed " + std::to_string(o->seed) +
                " --threads " + std::to_string(recipe.train.threads) +
                (o->steps > 0 ? " --steps " + std::to_string(o->steps) : "") + (o->force ? " --force" : "");
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    const int64_t steps = recipe.train.steps;
    s.callbacks.report_every = 1;
    RunControl control;  // Ctrl-C interrupts it; a second Ctrl-C ends the process at once
    s.callbacks.cancel = control.cancel_flag();
    if (!o->quiet) {
      s.on_phase = [tty](const std::string& p) {
        if (tty) std::cerr << "\r\033[K";
        std::cerr << p << "...\n";
      };
      // A TTY gets one line redrawn in place (at most 10 times a second); a log gets a line every
      // 5% of the steps or every 30 seconds, whichever comes first.
      auto last = std::make_shared<double>(-1e9);
      const int64_t every = std::max<int64_t>(1, steps / 20);
      s.callbacks.on_progress = [tty, last, every](const TrainProgress& p) {
        const bool done = p.step == p.steps;
        const double gap = tty ? 0.1 : 30.0;
        if (!done && !(!tty && p.step % every == 0) && p.elapsed_s - *last < gap) return;
        *last = p.elapsed_s;
        char line[160];
        const double frac = static_cast<double>(p.step) / static_cast<double>(std::max<int64_t>(1, p.steps));
        const double eta = p.step > 0 ? p.elapsed_s * (static_cast<double>(p.steps - p.step) / static_cast<double>(p.step)) : 0;
        std::snprintf(line, sizeof line, "[%s] %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  %.0fs, eta %.0fs",
                      bar(frac, 24).c_str(), static_cast<long long>(p.step), static_cast<long long>(p.steps),
                      p.loss, p.lr, p.tokens_per_s, p.elapsed_s, eta);
        if (tty) std::cerr << "\r\033[K" << line << (done ? "\n" : "") << std::flush;
        else std::cerr << line << "\n";
      };
    }
    SignalInterrupt sigint(control, true);
    Result<ZooTrainResult> res = train_zoo(recipe, o->out, s);
    if (!res) throw InputError(res.error().message, res.error().code);
    if (res->cancelled) {
      if (tty) std::cerr << "\n";
      std::cerr << "mechscope: interrupted after " << res->outcome.steps_done << " steps; nothing was written\n";
      return 130;
    }
    const nlohmann::json& r = res->zoo["result"];
    std::cout << "wrote " << o->name << " to " << o->out << ": " << r["steps"].get<int64_t>() << " steps, final loss "
              << r["final_loss"].get<double>() << ", " << static_cast<int64_t>(r["tokens_per_s"].get<double>())
              << " tokens/s, " << static_cast<int64_t>(r["seconds"].get<double>()) << " s\n";
    const nlohmann::json& m = res->zoo["measured"];
    std::cout << "  induction: best " << m["induction_best"]["head"].get<std::string>() << " score "
              << m["induction_best"]["score"].get<double>() << "; previous-token (layer 0): best "
              << m["previous_token_best_layer0"]["head"].get<std::string>() << " score "
              << m["previous_token_best_layer0"]["score"].get<double>() << "; loss on the repeated half "
              << m["loss_repeated_half"].get<double>() << "\n";
    if (m.contains("retrieval")) {
      const auto& rt = m["retrieval"];
      std::cout << "  retrieval: accuracy " << rt["accuracy"].get<double>() << ", heads " << rt["heads"].dump()
                << "; ablated: retrieval heads " << rt["ablation"]["retrieval_heads_ablated_accuracy"].get<double>()
                << ", random heads " << rt["ablation"]["random_heads_ablated_accuracy_mean"].get<double>() << "\n";
    }
    std::cout << "  first-token sinks (alpha_0 > 0.3): " << m["sink"]["heads"].dump() << "\n";
    return 0;
  });
}

}  // namespace ms::app
