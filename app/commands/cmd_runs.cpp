// `mechscope runs [list|show ID|delete ID]`: the runs kept in the database, one run's provenance
// and contents, and deleting a run with everything it holds.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "core/base/json_input.h"
#include "report/run_show.h"
#include "storage/database.h"

namespace ms::app {
namespace {

using nlohmann::json;

json run_json(const RunInfo& r) {
  return {{"id", r.id}, {"kind", r.spec.kind}, {"status", run_status_name(r.status)},
          {"model_id", r.spec.model_id}, {"params", ms::parse_json_or_discarded(r.spec.params_json)},
          {"command", r.spec.command}, {"label", r.spec.label}, {"resume_key", r.spec.resume_key},
          {"mechscope_version", r.mechscope_version}, {"progress", r.progress}, {"created_at", r.created_at},
          {"started_at", r.started_at}, {"finished_at", r.finished_at}, {"error", r.error},
          {"pid", r.pid}, {"host", r.host}};
}

void print_json(const json& j) {
  std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

template <class T>
T take(Result<T> r) {
  if (!r) throw InputError(r.error().message, r.error().code);
  return std::move(*r);
}

int64_t parse_run_id(const std::string& s) {
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used == s.size() && v > 0) return v;
  } catch (const std::exception&) {
  }
  fail_usage("'" + s + "' is not a run id (a positive number; `mechscope runs list` shows them)");
}

int list(Database& db, const std::string& kind, int64_t limit, bool as_json) {
  std::vector<RunSummary> runs = take(db.list_runs({kind, std::nullopt, 0, limit}));
  if (as_json) {
    json arr = json::array();
    for (const RunSummary& s : runs) {
      json j = run_json(s.run);
      j["model_path"] = s.model_path;
      j["architecture"] = s.model_architecture;
      j["counts"] = {{"inputs", s.n_inputs}, {"scores", s.n_scores}, {"metrics", s.n_metrics},
                     {"tensors", s.n_tensors}, {"circuits", s.n_circuits}};
      arr.push_back(j);
    }
    print_json(arr);
    return 0;
  }
  if (runs.empty()) {
    std::cout << "no runs in " << db.path() << "\n";
    return 0;
  }
  std::printf("%6s  %-12s %-9s %-24s %8s %7s %7s  %s\n", "ID", "KIND", "STATUS", "FINISHED", "SCORES", "TENSORS",
              "INPUTS", "MODEL");
  for (const RunSummary& s : runs) {
    std::string model = s.model_path.empty() ? "-" : std::filesystem::path(s.model_path).filename().string();
    if (!s.model_architecture.empty()) model += " (" + s.model_architecture + ")";
    std::printf("%6lld  %-12s %-9s %-24s %8lld %7lld %7lld  %s\n", static_cast<long long>(s.run.id),
                s.run.spec.kind.c_str(), run_status_name(s.run.status),
                s.run.finished_at.empty() ? "-" : s.run.finished_at.c_str(), static_cast<long long>(s.n_scores),
                static_cast<long long>(s.n_tensors), static_cast<long long>(s.n_inputs), model.c_str());
  }
  std::cout << runs.size() << " run(s) in " << db.path() << "\n";
  return 0;
}

int show(Database& db, int64_t id, bool as_json) {
  RunInfo r = take(db.get_run(id));
  std::optional<ModelInfo> model;
  if (r.spec.model_id > 0) model = take(db.get_model(r.spec.model_id));
  std::vector<InputRecord> inputs = take(db.get_inputs(id));
  std::vector<HeadScores> scores = take(db.get_head_scores(id));
  std::vector<TensorInfo> tensors = take(db.list_tensors(id));
  std::vector<Circuit> circuits = take(db.get_circuits(id));
  std::vector<RunLink> links = take(db.get_links(id));
  std::vector<FeatureCard> features = take(db.get_feature_cards(id, {}, true));
  json metrics = json::array();
  for (const HeadScores& h : scores) {
    report::MetricSummary s = report::summarize_metric(h);
    json m = {{"metric", h.metric}, {"n_layers", h.n_layers}, {"n_heads", h.n_heads}, {"n_values", s.n}};
    if (s.n) {
      m["min"] = s.min;
      m["max"] = s.max;
      m["mean"] = s.mean;
      m["argmax"] = {{"layer", s.argmax_layer}, {"head", s.argmax_head}};
    }
    metrics.push_back(m);
  }
  if (as_json) {
    json j = {{"run", run_json(r)}, {"metrics", metrics}};
    if (model)
      j["model"] = {{"id", model->id}, {"path", model->path}, {"architecture", model->architecture},
                    {"content_hash", model->content_hash}, {"n_params", model->n_params},
                    {"config", ms::parse_json_or_discarded(model->config_json)}};
    j["inputs"] = json::array();
    for (const InputRecord& in : inputs)
      j["inputs"].push_back({{"index", in.index}, {"text", in.text}, {"token_ids", in.token_ids}, {"tokens", in.tokens}});
    j["tensors"] = json::array();
    for (const TensorInfo& t : tensors)
      j["tensors"].push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"raw_bytes", t.raw_bytes},
                              {"stored_bytes", t.stored_bytes}, {"meta", ms::parse_json_or_discarded(t.meta_json)}});
    j["circuits"] = json::array();
    for (const Circuit& c : circuits)
      j["circuits"].push_back({{"name", c.name}, {"nodes", c.nodes.size()}, {"edges", c.edges.size()}});
    j["features"] = json::array();
    for (const FeatureCard& c : features)
      j["features"].push_back({{"feature", c.feature}, {"density", c.density()}, {"max_act", c.max_act},
                               {"n_firing", c.n_firing}, {"n_tokens", c.n_tokens}});
    j["links"] = json::array();
    for (const RunLink& l : links)
      j["links"].push_back({{"run_id", l.run_id}, {"relation", l.relation}, {"source_run_id", l.source_run_id}});
    print_json(j);
    return 0;
  }
  std::cout << "run " << r.id << ": " << r.spec.kind << " (" << run_status_name(r.status) << ")\n";
  for (const report::RunField& f : take(report::run_show_fields(db, id)))
    std::printf("  %-10s %s\n", f.key.c_str(), f.value.c_str());
  return 0;
}

}  // namespace

void register_runs(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  struct Opts {
    std::string db, action = "list", id, kind;
    int64_t limit = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("runs", "List, show or delete the analysis runs kept in the database");
  cmd->add_option("action", o->action, "list, show or delete")
      ->check(CLI::IsMember({"list", "show", "delete"}))
      ->capture_default_str();
  cmd->add_option("id", o->id, "run id (show, delete)");
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB, else $XDG_DATA_HOME/mechscope/mechscope.db)");
  cmd->add_option("--kind", o->kind, "list: only runs of this kind");
  cmd->add_option("--limit", o->limit, "list: the newest N runs (0: all)");
  cmd->add_flag("--json", o->json, "print JSON");
  cmds.emplace_back(cmd, [o]() {
    if (o->action == "list") {
      if (!o->id.empty()) fail_usage("runs list takes no run id (did you mean `runs show " + o->id + "`?)");
      std::string path = resolve_db_path(o->db);
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) {  // nothing stored yet: not an error
        if (o->json) std::cout << "[]\n";
        else std::cout << "no runs yet (no database at " << path << ")\n";
        return 0;
      }
      return list(*open_database(o->db, true), o->kind, o->limit, o->json);
    }
    if (o->id.empty()) fail_usage("runs " + o->action + " needs a run id: mechscope runs " + o->action + " ID");
    int64_t id = parse_run_id(o->id);
    std::unique_ptr<Database> db = open_database(o->db, true);
    if (o->action == "show") return show(*db, id, o->json);
    RunInfo r = take(db->get_run(id));
    Status st = db->delete_run(id);
    if (!st) throw InputError(st.error().message, st.error().code);
    if (o->json) print_json({{"deleted", id}});
    else std::cout << "deleted run " << id << " (" << r.spec.kind << ") from " << db->path() << "\n";
    return 0;
  });
}

}  // namespace ms::app
