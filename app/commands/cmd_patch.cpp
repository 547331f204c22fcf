// `mechscope patch`: activation patching grids (resid_pre / attn_out / mlp_out by layer x
// position; z by layer x head, optionally per position; q / k / v / pattern per head) on a task,
// with the normalised metric, plus direct logit attribution; stored as a run.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/circuit_common.h"
#include "app/commands/circuit_runs.h"
#include "app/commands/progress.h"
#include "core/analysis/circuits/patching.h"

namespace ms::app {
namespace {

struct Opts : ModelOptions {
  TaskCliOptions task;
  std::string what = "resid_pre", db;
  bool per_position = false;
};

nlohmann::json grid_json(const at::Tensor& v) {
  at::Tensor x = v.contiguous();
  if (x.dim() == 1) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t i = 0; i < x.size(0); ++i) {
      double d = x[i].item<double>();
      row.push_back(std::isnan(d) ? nlohmann::json() : nlohmann::json(d));
    }
    return row;
  }
  nlohmann::json out = nlohmann::json::array();
  for (int64_t i = 0; i < x.size(0); ++i) out.push_back(grid_json(x[i]));
  return out;
}

void print_grid(const at::Tensor& v, const std::vector<std::string>& cols, const std::string& row_name) {
  std::printf("%8s", row_name.c_str());
  for (const auto& c : cols) std::printf(" %7.7s", c.c_str());
  std::printf("\n");
  for (int64_t r = 0; r < v.size(0); ++r) {
    std::printf("%8lld", static_cast<long long>(r));
    for (int64_t c = 0; c < v.size(1); ++c) std::printf(" %7.3f", v[r][c].item<double>());
    std::printf("\n");
  }
}

}  // namespace

void register_patch(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("patch", "Activation patching on a task: layer x position or layer x head grids");
  add_model_options(*cmd, *o);
  add_task_options(*cmd, o->task);
  cmd->add_option("--what", o->what, "resid_pre, attn_out, mlp_out (layer x position); z, q, k, v, pattern (layer x head)")
      ->capture_default_str();
  cmd->add_flag("--per-position", o->per_position, "z: one cell per layer, head and position");
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  cmds.emplace_back(cmd, [o]() {
    std::unique_ptr<Model> m = load_model(*o);
    TaskPairs task = make_cli_task(*m, o->task, o->json);
    PatchOptions po;
    po.what = o->what;
    po.per_position = o->per_position;
    std::unique_ptr<Database> db = open_database(o->db, false);
    nlohmann::json params = {{"task", o->task.task}, {"what", o->what}, {"per_position", o->per_position},
                             {"n", task.n()}, {"seed", o->task.seed}, {"survived", task.n_kept},
                             {"generated", task.n_candidates}};
    if (!o->task.task_file.empty()) params["task_file"] = o->task.task_file;
    const int64_t run = begin_cli_run(*db, *m, "patch", params.dump());
    Interruptible intr;
    ProgressBar bar("patch " + o->what, 1000, o->json);
    PatchRun pr;
    try {
      pr = patch_run(*m, task, po, [&](int64_t done, int64_t total) {
        bar.update(done * 1000 / total);
        (void)db->set_progress(run, static_cast<double>(done) / static_cast<double>(total));
      }, intr.flag());
    } catch (const InputError& e) {
      (void)db->fail_run(run, e.what());
      throw;
    }
    bar.finish();
    if (pr.cancelled || intr.cancelled()) {
      (void)db->cancel_run(run, "interrupted");
      throw InputError("interrupted; run " + std::to_string(run) + " marked cancelled", ErrorCode::kInternal);
    }
    throw_if_failed(db->finish_run(run, pr.results));
    const PatchGrid& grid = pr.grid;
    const std::vector<std::string>& labels = pr.labels;

    if (o->json) {
      nlohmann::json j = {{"run", run}, {"what", o->what}, {"axes", grid.axes}, {"metric_clean", grid.metric_clean},
                          {"metric_corrupted", grid.metric_corrupted}, {"values", grid_json(grid.values)},
                          {"n_pairs", task.n()}, {"survived", task.n_kept}, {"generated", task.n_candidates}};
      if (grid.axes.back() == "position") j["tokens"] = labels;
      std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return 0;
    }
    std::printf("run %lld: %s patching on %s (%lld pairs); metric clean %.4f, corrupted %.4f\n",
                static_cast<long long>(run), o->what.c_str(), o->task.task.c_str(), static_cast<long long>(task.n()),
                grid.metric_clean, grid.metric_corrupted);
    std::printf("values: (m - m_corrupted) / (m_clean - m_corrupted) with the clean activation patched in\n\n");
    if (grid.axes.size() == 2) {
      std::vector<std::string> cols;
      if (grid.axes[1] == "position") cols = labels;
      else for (int64_t h = 0; h < grid.values.size(1); ++h) cols.push_back("h" + std::to_string(h));
      print_grid(grid.values, cols, "layer");
    } else {
      for (int64_t l = 0; l < grid.values.size(0); ++l) {
        std::printf("layer %lld\n", static_cast<long long>(l));
        print_grid(grid.values[l], labels, "head");
      }
    }
    return 0;
  });
}

}  // namespace ms::app
