// `mechscope patch`: activation patching grids (resid_pre / attn_out / mlp_out by layer x
// position; z by layer x head, optionally per position; q / k / v / pattern per head) on a task,
// with the normalised metric, plus direct logit attribution; stored as a run by run_patch
// (runs/patch_run.h), whose spec makes the options.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "app/commands/cli_run.h"
#include "app/commands/progress.h"
#include "app/commands/spec_cli.h"
#include "runs/patch_run.h"

namespace ms::app {
namespace {

struct Opts : AnalysisOptions {};

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

// Loads the model, runs run_patch with a progress bar and Ctrl-C, prints the grid.
int run(const Opts& o) {
  nlohmann::json params = o.spec->params();
  CliRun cli(o, "patch");
  const Model* m = cli.model.get();
  PatchRunOutcome r = run_patch(cli.session, *m, params);
  cli.bar.finish();
  if (r.cancelled) throw InputError("interrupted; run " + std::to_string(r.run_id) + " marked cancelled", ErrorCode::kInternal);
  const std::string what = r.params["what"].get<std::string>(), task = r.params["task"].get<std::string>();
  const int64_t survived = r.counts["survived"].get<int64_t>(), generated = r.counts["generated"].get<int64_t>();
  if (!o.json && survived != generated)
    std::cerr << task << ": " << survived << " of " << generated << " generated prompts survived the single-token filter\n";
  const PatchGrid& grid = r.run.grid;
  const std::vector<std::string>& labels = r.run.labels;
  if (o.json) {
    nlohmann::json j = {{"run", r.run_id}, {"what", what}, {"axes", grid.axes}, {"metric_clean", grid.metric_clean},
                        {"metric_corrupted", grid.metric_corrupted}, {"values", grid_json(grid.values)},
                        {"n_pairs", r.counts["n_pairs"]}, {"survived", survived}, {"generated", generated}};
    if (grid.axes.back() == "position") j["tokens"] = labels;
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::printf("run %lld: %s patching on %s (%lld pairs); metric clean %.4f, corrupted %.4f\n",
              static_cast<long long>(r.run_id), what.c_str(), task.c_str(),
              static_cast<long long>(r.counts["n_pairs"].get<int64_t>()), grid.metric_clean, grid.metric_corrupted);
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
}

}  // namespace

void register_patch(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = add_analysis_command(app, patch_spec(), "Activation patching on a task: layer x position or layer x head grids", *o);
  cmds.emplace_back(cmd, [o]() { return run(*o); });
}

}  // namespace ms::app
