// `mechscope retrieval`: retrieval heads (Wu et al. 2024) from a needle-in-a-haystack grid, stored
// as a run with head scores and the accuracy grid; --mask-top / --mask-random re-run the grid with
// heads masked (linked runs). Every (condition, length, depth, needle) cell is stored as its own
// item run with a resume key, so --resume skips the cells already done.
#include <ATen/ATen.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/commands/cli.h"
#include "app/commands/progress.h"
#include "core/analysis/retrieval/needle.h"
#include "core/analysis/retrieval/retrieval.h"
#include "runs/analysis_runs.h"
#include "storage/database.h"

namespace ms::app {
namespace {

struct Opts : ModelOptions {
  std::string haystack, needles, lengths, db;
  int64_t depths = 10, mask_top = 0, mask_random = 0, seeds = 3, max_new = 50, id_needles = 2;
  double threshold = 0.1;
  bool resume = false, exact = false;
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

}  // namespace

void register_retrieval(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("retrieval", "Find retrieval heads with needle-in-a-haystack tests (Wu et al. 2024)");
  add_model_options(*cmd, *o);
  cmd->add_option("--haystack", o->haystack, "haystack text file (default: procedural filler text)");
  cmd->add_option("--needles", o->needles, "needles: JSONL of {\"needle\", \"question\", \"answer\"} (default: the built-in set)");
  cmd->add_option("--lengths", o->lengths, "context lengths a,b,c (default: 10 from 256 to the context limit)");
  cmd->add_option("--depths", o->depths, "needle depths, evenly from 0% to 100%")->capture_default_str();
  cmd->add_option("--threshold", o->threshold, "retrieval head iff score > threshold")->capture_default_str();
  cmd->add_option("--mask-top", o->mask_top, "re-run with the top K retrieval heads masked");
  cmd->add_option("--mask-random", o->mask_random, "re-run with K random non-retrieval heads masked (--seeds draws)");
  cmd->add_option("--seeds", o->seeds, "random draws for --mask-random")->capture_default_str();
  cmd->add_option("--max-new", o->max_new, "greedy decode steps at most")->capture_default_str();
  cmd->add_flag("--exact-match", o->exact, "correct iff the output starts with the answer (implied without a tokenizer)");
  cmd->add_option("--id-needles", o->id_needles, "models without a tokenizer: token-id needles per cell")->capture_default_str();
  cmd->add_flag("--resume", o->resume, "skip the (length, depth, needle) cells already stored with the same parameters");
  cmd->add_option("--top", o->top, "top heads to print")->capture_default_str();
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  cmds.emplace_back(cmd, [o]() {
    if (o->depths < 1) fail_usage("--depths must be at least 1");
    if (o->mask_top < 0 || o->mask_random < 0 || o->seeds < 1) fail_usage("--mask-top/--mask-random must be >= 0 and --seeds >= 1");
    std::unique_ptr<Model> m = load_model(*o);
    const ModelConfig& c = m->config();
    std::vector<int64_t> lengths;
    if (!o->lengths.empty()) {
      for (int32_t v : parse_ids(o->lengths)) lengths.push_back(v);
    } else {
      lengths = default_lengths_for(c.n_ctx);
    }
    for (int64_t l : lengths)
      if (l < 8 || l >= c.n_ctx) fail_usage("--lengths: " + std::to_string(l) + " must be in [8, " + std::to_string(c.n_ctx) + ")");
    RetrievalRunConfig cfg;
    cfg.haystack = o->haystack;
    cfg.needles = o->needles;
    cfg.lengths = lengths;
    cfg.depths = o->depths;
    cfg.mask_top = o->mask_top;
    cfg.mask_random = o->mask_random;
    cfg.seeds = o->seeds;
    cfg.max_new = o->max_new;
    cfg.id_needles = o->id_needles;
    cfg.threshold = o->threshold;
    cfg.exact_match = o->exact;
    cfg.resume = o->resume;
    cfg.command = shell_join(command_line());
    std::unique_ptr<Database> db = open_database(o->db, false);

    RunControl control;
    std::unique_ptr<ProgressBar> bar;  // made at the first cell, when the total is known
    control.set_listener([&](int64_t d, int64_t total) {
      if (!bar) bar = std::make_unique<ProgressBar>("retrieval", total, o->json);
      bar->update(d);
    });
    Result<RetrievalRunOutcome> done = [&] {
      SignalInterrupt sig(control);
      return run_retrieval(*db, *m, cfg, control);
    }();
    if (!done) {
      if (bar) bar->finish();
      throw InputError(done.error().message, done.error().code);
    }
    if (done->cancelled) {
      if (bar) bar->finish();
      throw InputError("interrupted; run " + std::to_string(done->cancelled_run) +
                       " marked cancelled (re-run with --resume to continue)", ErrorCode::kInternal);
    }
    if (bar) bar->finish(done->reused > 0 ? std::to_string(done->reused) + " cells resumed" : "");
    const RetrievalReport& rep = done->report;
    const std::vector<HeadRef>& ret = done->retrieval_heads;
    const std::vector<RetrievalConditionResult>& conds = done->conditions;
    const int64_t n_l = static_cast<int64_t>(lengths.size());

    std::vector<std::pair<HeadRef, double>> ranked = rank_heads(rep.head_score);
    const size_t top = static_cast<size_t>(std::max(0, o->top));
    double base_acc = rep.accuracy.mean().item<double>();
    if (o->json) {
      nlohmann::json j;
      j["run_id"] = done->run_id;
      j["tests"] = rep.n_tests;
      j["counted"] = rep.n_counted;
      j["accuracy"] = base_acc;
      j["resumed_cells"] = done->reused;
      j["top_heads"] = nlohmann::json::array();
      for (size_t i = 0; i < std::min(top, ranked.size()); ++i)
        j["top_heads"].push_back({{"layer", ranked[i].first.layer}, {"head", ranked[i].first.head}, {"score", ranked[i].second}});
      j["retrieval_heads"] = heads_text(ret);
      j["conditions"] = nlohmann::json::array();
      for (const auto& cd : conds) {
        double a = cd.accuracy.mean().item<double>();
        j["conditions"].push_back({{"name", cd.name}, {"run_id", cd.run_id}, {"heads", cd.heads}, {"accuracy", a},
                                   {"drop", base_acc - a}});
      }
      std::cout << j.dump() << "\n";
      return 0;
    }
    std::printf("run %lld: %lld tests (%lld retrieved), %lld layers x %lld heads, accuracy %.1f%%\n",
                static_cast<long long>(done->run_id), static_cast<long long>(rep.n_tests), static_cast<long long>(rep.n_counted),
                static_cast<long long>(c.n_layers), static_cast<long long>(c.n_heads), base_acc);
    print_heatmap(rep.head_score);
    std::printf("top heads (retrieval heads: score > %.2f: %s):\n", o->threshold, heads_text(ret).c_str());
    for (size_t i = 0; i < std::min(top, ranked.size()); ++i)
      std::printf("  %lld.%lld  %.3f\n", static_cast<long long>(ranked[i].first.layer),
                  static_cast<long long>(ranked[i].first.head), ranked[i].second);
    std::printf("accuracy %% (rows: length, columns: depth 0%%..100%%): unmasked");
    for (const auto& cd : conds) std::printf("  |  %s", cd.name.c_str());
    std::printf("\n");
    for (int64_t li = 0; li < n_l; ++li) {
      std::printf("  %6lld %s", static_cast<long long>(lengths[static_cast<size_t>(li)]), fmt_grid_row(rep.accuracy, li).c_str());
      for (const auto& cd : conds) std::printf("  | %s", fmt_grid_row(cd.accuracy, li).c_str());
      std::printf("\n");
    }
    for (const auto& cd : conds) {
      double a = cd.accuracy.mean().item<double>();
      std::string hs;
      for (const auto& h : cd.heads) hs += (hs.empty() ? "" : "; ") + h;
      std::printf("%s masked (last run %lld, heads per draw: %s): accuracy %.1f%% (drop %.1f points)\n",
                  cd.name.c_str(), static_cast<long long>(cd.run_id), hs.c_str(), a, base_acc - a);
    }
    return 0;
  });
}

}  // namespace ms::app
