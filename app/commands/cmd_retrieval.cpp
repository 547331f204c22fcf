// `mechscope retrieval`: retrieval heads (Wu et al. 2024) from a needle-in-a-haystack grid, stored
// as a run with head scores and the accuracy grid; --mask-top / --mask-random re-run the grid with
// heads masked (linked runs). Every (condition, length, depth, needle) cell is stored as its own
// item run with a resume key, so --resume skips the cells already done. The parameters and the run
// come from runs/retrieval_run.h, as for batch jobs and the workbench.
#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "app/commands/cli_run.h"
#include "app/commands/progress.h"
#include "app/commands/spec_cli.h"
#include "runs/retrieval_run.h"
#include "storage/database.h"

namespace ms::app {
namespace {

struct Opts : AnalysisOptions {
  int top = 10;
};

std::string fmt_grid_row(const at::Tensor& acc, int64_t li) {
  std::string s;
  char buf[16];
  for (int64_t d = 0; d < acc.size(1); ++d) {
    std::snprintf(buf, sizeof(buf), "%4.0f", acc[li][d].item<double>());
    s += buf;
  }
  return s;
}

void print_heatmap(const at::Tensor& s) {
  static const char* kShades = " .:-=+*#%@";
  std::printf("retrieval score heatmap (rows: layers, columns: heads; ' ' 0 .. '@' >= 0.9)\n");
  for (int64_t l = 0; l < s.size(0); ++l) {
    std::printf("  %3lld |", static_cast<long long>(l));
    for (int64_t h = 0; h < s.size(1); ++h) {
      double v = std::clamp(s[l][h].item<double>(), 0.0, 0.999);
      std::putchar(kShades[static_cast<int>(v * 10)]);
    }
    std::printf("|\n");
  }
}

void print_json(const RetrievalRunOutcome& r, size_t top) {
  const RetrievalReport& rep = r.report;
  const double base_acc = rep.accuracy.mean().item<double>();
  std::vector<std::pair<HeadRef, double>> ranked = rank_heads(rep.head_score);
  nlohmann::json j;
  j["run_id"] = r.run_id;
  j["tests"] = rep.n_tests;
  j["counted"] = rep.n_counted;
  j["accuracy"] = base_acc;
  j["resumed_cells"] = r.reused;
  j["top_heads"] = nlohmann::json::array();
  for (size_t i = 0; i < std::min(top, ranked.size()); ++i)
    j["top_heads"].push_back({{"layer", ranked[i].first.layer}, {"head", ranked[i].first.head}, {"score", ranked[i].second}});
  j["retrieval_heads"] = heads_text(r.retrieval_heads);
  j["conditions"] = nlohmann::json::array();
  for (const auto& cd : r.conditions) {
    double a = cd.accuracy.mean().item<double>();
    j["conditions"].push_back({{"name", cd.name}, {"run_id", cd.run_id}, {"heads", cd.heads}, {"accuracy", a},
                               {"drop", base_acc - a}});
  }
  std::cout << j.dump() << "\n";
}

void print_text(const RetrievalRunOutcome& r, size_t top, const ModelConfig& c) {
  const RetrievalReport& rep = r.report;
  const double base_acc = rep.accuracy.mean().item<double>();
  const std::vector<int64_t> lengths = r.params["lengths"].get<std::vector<int64_t>>();
  std::printf("run %lld: %lld tests (%lld retrieved), %lld layers x %lld heads, accuracy %.1f%%\n",
              static_cast<long long>(r.run_id), static_cast<long long>(rep.n_tests), static_cast<long long>(rep.n_counted),
              static_cast<long long>(c.n_layers), static_cast<long long>(c.n_heads), base_acc);
  print_heatmap(rep.head_score);
  std::vector<std::pair<HeadRef, double>> ranked = rank_heads(rep.head_score);
  std::printf("top heads (retrieval heads: score > %.2f: %s):\n", r.params["threshold"].get<double>(),
              heads_text(r.retrieval_heads).c_str());
  for (size_t i = 0; i < std::min(top, ranked.size()); ++i)
    std::printf("  %lld.%lld  %.3f\n", static_cast<long long>(ranked[i].first.layer),
                static_cast<long long>(ranked[i].first.head), ranked[i].second);
  std::printf("accuracy %% (rows: length, columns: depth 0%%..100%%): unmasked");
  for (const auto& cd : r.conditions) std::printf("  |  %s", cd.name.c_str());
  std::printf("\n");
  for (size_t li = 0; li < lengths.size(); ++li) {
    std::printf("  %6lld %s", static_cast<long long>(lengths[li]), fmt_grid_row(rep.accuracy, static_cast<int64_t>(li)).c_str());
    for (const auto& cd : r.conditions) std::printf("  | %s", fmt_grid_row(cd.accuracy, static_cast<int64_t>(li)).c_str());
    std::printf("\n");
  }
  for (const auto& cd : r.conditions) {
    double a = cd.accuracy.mean().item<double>();
    std::string hs;
    for (const auto& h : cd.heads) hs += (hs.empty() ? "" : "; ") + h;
    std::printf("%s masked (last run %lld, heads per draw: %s): accuracy %.1f%% (drop %.1f points)\n",
                cd.name.c_str(), static_cast<long long>(cd.run_id), hs.c_str(), a, base_acc - a);
  }
}

int run(const Opts& o) {
  nlohmann::json params = o.spec->params();
  CliRun cli(o, "retrieval");
  const Model* m = cli.model.get();
  RetrievalRunOutcome r = run_retrieval(cli.session, *m, params);
  cli.bar.finish(r.reused > 0 ? std::to_string(r.reused) + " cells resumed" : "");
  if (r.cancelled)
    throw InputError("interrupted; run " + std::to_string(r.cancelled_run) + " marked cancelled (re-run with --resume to continue)",
                     ErrorCode::kInternal);
  const size_t top = static_cast<size_t>(std::max(0, o.top));
  if (o.json) print_json(r, top);
  else print_text(r, top, m->config());
  return 0;
}

}  // namespace

void register_retrieval(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = add_analysis_command(app, retrieval_spec(), "Find retrieval heads with needle-in-a-haystack tests (Wu et al. 2024)", *o);
  cmd->add_option("--top", o->top, "top heads to print")->capture_default_str();
  cmds.emplace_back(cmd, [o]() { return run(*o); });
}

}  // namespace ms::app
