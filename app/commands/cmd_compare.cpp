// `mechscope compare RUN_A RUN_B`: the same metric on two runs (two models, or one model before
// and after an intervention), head by head, biggest differences first; circuits by node and edge IoU.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "storage/compare.h"

namespace ms::app {

void register_compare(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  struct Opts {
    std::string db, metric;
    int64_t a = 0, b = 0;
    int top = 20;
    bool json = false, across_models = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("compare", "Compare two runs' head scores (biggest differences first) and circuits (node / edge IoU)");
  cmd->add_option("run_a", o->a, "first run id")->required();
  cmd->add_option("run_b", o->b, "second run id")->required();
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB, else $XDG_DATA_HOME/mechscope/mechscope.db)");
  cmd->add_option("--metric", o->metric, "compare only this metric");
  cmd->add_option("--top", o->top, "heads to show per metric (0: all)")->capture_default_str();
  cmd->add_flag("--json", o->json, "print JSON");
  cmd->add_flag("--across-models", o->across_models,
                "compare runs of two different models by layer.head (refused otherwise; the shapes must match)");
  cmds.emplace_back(cmd, [o]() {
    if (o->top < 0) fail_usage("--top must not be negative");
    std::unique_ptr<Database> db = open_database(o->db, true);
    Result<RunComparison> r = compare_runs(*db, o->a, o->b, CompareOptions{o->metric, o->across_models});
    if (!r) throw InputError(r.error().message, r.error().code);
    const RunComparison& c = *r;
    size_t top = o->top == 0 ? SIZE_MAX : static_cast<size_t>(o->top);
    if (o->json) {
      nlohmann::json j;
      j["run_a"] = {{"id", c.a.id}, {"kind", c.a.spec.kind}, {"model_id", c.a.spec.model_id}};
      j["run_b"] = {{"id", c.b.id}, {"kind", c.b.spec.kind}, {"model_id", c.b.spec.model_id}};
      j["same_model"] = c.same_model;
      j["model_a"] = c.model_a;
      j["model_b"] = c.model_b;
      if (!c.note.empty()) j["note"] = c.note;
      j["only_a"] = c.only_a;
      j["only_b"] = c.only_b;
      j["metrics"] = nlohmann::json::array();
      for (const MetricComparison& m : c.metrics) {
        nlohmann::json mj = {{"metric", m.metric}, {"n_common", m.n_common}, {"only_a", m.only_a},
                             {"only_b", m.only_b}, {"mean_abs_diff", m.mean_abs_diff},
                             {"max_abs_diff", m.max_abs_diff}};
        mj["pearson"] = std::isnan(m.pearson) ? nlohmann::json() : nlohmann::json(m.pearson);
        mj["heads"] = nlohmann::json::array();
        for (size_t i = 0; i < m.heads.size() && i < top; ++i) {
          const HeadDiff& d = m.heads[i];
          mj["heads"].push_back({{"layer", d.layer}, {"head", d.head}, {"a", d.a}, {"b", d.b}, {"diff", d.diff}});
        }
        j["metrics"].push_back(mj);
      }
      j["circuits"] = nlohmann::json::array();
      for (const CircuitComparison& cc : c.circuits) {
        auto num = [](double x) { return std::isnan(x) ? nlohmann::json() : nlohmann::json(x); };
        j["circuits"].push_back({{"a", cc.name_a}, {"b", cc.name_b}, {"nodes_a", cc.nodes_a}, {"nodes_b", cc.nodes_b},
                                 {"nodes_common", cc.nodes_common}, {"edges_a", cc.edges_a}, {"edges_b", cc.edges_b},
                                 {"edges_common", cc.edges_common}, {"node_iou", num(cc.node_iou)},
                                 {"edge_iou", num(cc.edge_iou)}, {"head_overlap", num(cc.head_overlap)},
                                 {"head_precision", num(cc.head_precision)}, {"head_recall", num(cc.head_recall)},
                                 {"heads_only_a", cc.heads_only_a}, {"heads_only_b", cc.heads_only_b}});
      }
      std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return 0;
    }
    std::cout << "run " << c.a.id << " (" << c.a.spec.kind << ") vs run " << c.b.id << " (" << c.b.spec.kind
              << "); diff = b - a\n";
    if (!c.note.empty()) std::cout << "note: " << c.note << "\n";
    if (c.metrics.empty() && c.circuits.empty()) std::cout << "the two runs share no metric and no circuit\n";
    auto join = [](const std::vector<std::string>& v) {
      std::string out;
      for (const auto& x : v) out += (out.empty() ? "" : " ") + x;
      return out.empty() ? std::string("(none)") : out;
    };
    for (const CircuitComparison& cc : c.circuits) {
      std::printf("\ncircuit %s vs %s: nodes %lld / %lld, %lld shared, IoU %.3f; edges %lld / %lld, %lld shared, IoU %.3f; "
                  "in-circuit heads IoU %.3f\n",
                  cc.name_a.c_str(), cc.name_b.c_str(), static_cast<long long>(cc.nodes_a), static_cast<long long>(cc.nodes_b),
                  static_cast<long long>(cc.nodes_common), cc.node_iou, static_cast<long long>(cc.edges_a),
                  static_cast<long long>(cc.edges_b), static_cast<long long>(cc.edges_common), cc.edge_iou, cc.head_overlap);
      std::printf("  heads of run %lld against run %lld: precision %.3f, recall %.3f\n", static_cast<long long>(c.a.id),
                  static_cast<long long>(c.b.id), cc.head_precision, cc.head_recall);
      std::cout << "  heads only in run " << c.a.id << ": " << join(cc.heads_only_a) << "\n";
      std::cout << "  heads only in run " << c.b.id << ": " << join(cc.heads_only_b) << "\n";
    }
    for (const MetricComparison& m : c.metrics) {
      std::printf("\n%s: %d heads in both", m.metric.c_str(), m.n_common);
      if (m.only_a || m.only_b) std::printf(" (%d only in run %lld, %d only in run %lld)", m.only_a,
                                            static_cast<long long>(c.a.id), m.only_b, static_cast<long long>(c.b.id));
      std::printf("; mean |diff| %.4g, max |diff| %.4g", m.mean_abs_diff, m.max_abs_diff);
      if (!std::isnan(m.pearson)) std::printf(", pearson %.4f", m.pearson);
      std::printf("\n  %5s %5s %12s %12s %12s\n", "layer", "head", "a", "b", "diff");
      for (size_t i = 0; i < m.heads.size() && i < top; ++i) {
        const HeadDiff& d = m.heads[i];
        std::printf("  %5d %5d %12.5g %12.5g %+12.5g\n", d.layer, d.head, d.a, d.b, d.diff);
      }
    }
    for (const auto& name : c.only_a) std::cout << "metric only in run " << c.a.id << ": " << name << "\n";
    for (const auto& name : c.only_b) std::cout << "metric only in run " << c.b.id << ": " << name << "\n";
    return 0;
  });
}

}  // namespace ms::app
