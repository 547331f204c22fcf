// `mechscope batch JOB.toml`: runs a whole study from a job file (app/batch/batch_job.h), item by item,
// each item's result stored as one run in its own transaction with a resume key; --resume skips
// what is stored; --shard I/N, Slurm job arrays and mpirun split the items across processes.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "app/batch/batch_analyses.h"
#include "app/batch/batch_job.h"
#include "app/batch/batch_progress.h"
#include "app/commands/cli.h"
#include "app/batch/mpi_world.h"
#include "storage/database.h"
#include "report/report.h"
#include "runs/run_control.h"
#include "runs/run_session.h"

namespace ms::app {
namespace {

using namespace ms::app::batch;
namespace fs = std::filesystem;

constexpr double kNominalFlopsPerThread = 2e9;  // for the time estimate only (rough)

struct Opts {
  std::string job, db, shard;
  bool resume = false, dry_run = false, json = false;
};

// "study.db" -> "study.shard-1-of-4.db"
std::string shard_db_path(const std::string& db, int i, int n) {
  fs::path p(db);
  std::string ext = p.extension().string();
  fs::path stem = p.parent_path() / p.stem();
  return stem.string() + ".shard-" + std::to_string(i) + "-of-" + std::to_string(n) + (ext.empty() ? ".db" : ext);
}

void parse_shard(const std::string& s, int* i, int* n) {
  size_t slash = s.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument(s);
    size_t u1 = 0, u2 = 0;
    *i = std::stoi(s.substr(0, slash), &u1);
    *n = std::stoi(s.substr(slash + 1), &u2);
    if (u1 != slash || u2 != s.size() - slash - 1) throw std::invalid_argument(s);
  } catch (const std::exception&) {
    fail_usage("--shard '" + s + "': expected I/N, e.g. 0/4 (shards are numbered from 0)");
  }
  if (*n < 1 || *i < 0 || *i >= *n) fail_usage("--shard '" + s + "': need 0 <= I < N");
}

std::string fmt_seconds(double s) {
  char buf[32];
  if (s < 120) std::snprintf(buf, sizeof(buf), "%.1f s", s);
  else if (s < 7200) std::snprintf(buf, sizeof(buf), "%.1f min", s / 60);
  else std::snprintf(buf, sizeof(buf), "%.1f h", s / 3600);
  return buf;
}

int dry_run(const Job& job, const std::vector<WorkItem>& all, const std::vector<WorkItem>& mine, int si, int sn,
            const std::string& db, bool json) {
  const double rate = kNominalFlopsPerThread * job.threads;
  int64_t peak = 0;
  double flops = 0;
  for (const auto& it : mine) peak = std::max(peak, it.mem_bytes), flops += it.flops;
  if (json) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& it : mine)
      items.push_back({{"key", it.key}, {"resume_key", it.resume_key}, {"kind", job.analyses[it.analysis].kind},
                       {"params", it.params}, {"memory_bytes", it.mem_bytes}, {"seconds", it.flops / rate}});
    std::cout << nlohmann::json({{"event", "plan"}, {"job", job.path}, {"db", db}, {"shard", si}, {"shards", sn},
                                 {"items_total", all.size()}, {"items", items}, {"peak_memory_bytes", peak},
                                 {"machine_memory_bytes", machine_memory_bytes()}, {"seconds", flops / rate}})
                     .dump()
              << "\n";
    return 0;
  }
  std::printf("job %s: %zu items", job.path.c_str(), all.size());
  if (sn > 1) std::printf(", shard %d of %d (0-based): %zu items", si, sn, mine.size());
  std::printf(", %d thread(s), database %s\n", job.threads, db.c_str());
  for (const auto& it : mine)
    std::printf("  %-60s memory ~%-10s time ~%s\n", it.key.c_str(), format_bytes(static_cast<double>(it.mem_bytes)).c_str(),
                fmt_seconds(it.flops / rate).c_str());
  std::printf("estimate: peak memory ~%s (this machine: %s), time ~%s at a nominal %.0f GFLOP/s per thread\n",
              format_bytes(static_cast<double>(peak)).c_str(), format_bytes(static_cast<double>(machine_memory_bytes())).c_str(),
              fmt_seconds(flops / rate).c_str(), kNominalFlopsPerThread / 1e9);
  return 0;
}

void write_reports(const Job& job, Database& db, const std::vector<WorkItem>& all, BatchProgress& ui) {
  if (job.reports.empty()) return;
  std::vector<int64_t> ids;
  for (const auto& it : all) {
    Result<std::optional<int64_t>> f = db.find_done_run(job.analyses[it.analysis].kind, it.resume_key);
    if (f && f->has_value()) ids.push_back(**f);
  }
  if (ids.empty()) return ui.message("no finished items; reports not written");
  for (const ReportEntry& r : job.reports) {
    ReportOptions ro;
    ro.format = *parse_report_format(r.format);
    ro.out = r.out;
    ro.force = true;  // the job owns its report files
    Result<std::vector<std::string>> files = write_report(db, ids, ro);
    if (!files) throw InputError(r.where.str() + ": report " + r.out + ": " + files.error().message, files.error().code);
    ui.event("report", {{"format", r.format}, {"out", r.out}, {"runs", ids.size()}});
    ui.message("report " + r.format + ": " + r.out + " (" + std::to_string(ids.size()) + " runs)");
  }
}

// The provenance every item's run carries: the batch command, its key and resume key, and the
// "batch" parameters (item, analysis, model, prompt set).
RunProvenance item_provenance(const Job& job, const WorkItem& it) {
  RunProvenance p;
  p.command = shell_join(command_line());
  p.label = it.key;
  p.resume_key = it.resume_key;
  p.params["batch"] = {{"item", it.key}, {"analysis", job.analyses[it.analysis].name}, {"model", job.models[it.model].name},
                       {"prompts", it.prompts >= 0 ? job.prompts[static_cast<size_t>(it.prompts)].name : ""}};
  return p;
}

// Runs the items; returns how many failed. Stops (cancelled) when control is interrupted.
int64_t run_items(const Job& job, const std::vector<WorkItem>& mine, Database& db, bool resume, BatchProgress& ui,
                  std::map<std::string, int64_t>& counts, RunControl& control) {
  // Load each model once: run the items model by model (key order within a model).
  std::vector<const WorkItem*> order;
  for (const auto& it : mine) order.push_back(&it);
  std::stable_sort(order.begin(), order.end(), [](const WorkItem* a, const WorkItem* b) { return a->model < b->model; });
  std::unique_ptr<Model> model;
  size_t loaded = SIZE_MAX;
  int64_t model_id = 0;
  std::string model_error;
  int64_t failed = 0;
  for (const WorkItem* it : order) {
    if (control.interrupted()) break;
    const AnalysisEntry& a = job.analyses[it->analysis];
    const Analysis* an = find_analysis(a.kind);
    ui.item_start(it->key);
    if (resume) {
      Result<std::optional<int64_t>> f = db.find_done_run(a.kind, it->resume_key);
      if (!f) throw InputError(f.error().message, f.error().code);
      if (f->has_value()) {
        ++counts["skipped"];
        ui.item_end("skipped", {{"run_id", **f}});
        continue;
      }
    }
    if (loaded != it->model) {
      model.reset();
      model_error.clear();
      loaded = it->model;
      ModelOptions mo;
      mo.model = job.models[it->model].path;
      mo.threads = job.threads;
      Result<int> r = guard([&]() {
        model = load_model(mo);
        Result<int64_t> id = db.register_model(*model);
        if (!id) throw InputError(id.error().message, id.error().code);
        model_id = *id;
        return 0;
      });
      if (!r) model_error = r.error().message;
    }
    if (!model_error.empty()) {
      ++failed;
      ui.item_end("failed", {{"error", model_error}});
      continue;
    }
    control.set_listener([&](int64_t d, int64_t t) { ui.item_progress(d, t); });
    RunProvenance prov = item_provenance(job, *it);
    RunSession session(db, control, prov, RunSession::Mode::kOneTransaction);
    ItemContext ctx{job, *it, *model, control.progress_fn(), control.cancel_flag(), &session};
    Result<ItemOutput> out = guard([&]() { return an->run(ctx); });
    control.set_listener({});
    if (control.interrupted()) break;  // an interrupted item is not stored
    if (!out) {
      ++failed;
      ui.item_end("failed", {{"error", out.error().message}});
      continue;
    }
    // The run function finished the item's run (and its linked runs) through the session: one
    // transaction writes them all.
    Result<int64_t> id = guard([&]() { return session.commit(); });
    if (!id || *id == 0) {
      ++failed;
      ui.item_end("failed", {{"error", id ? std::string("the item stored no run") : id.error().message}});
      continue;
    }
    ++counts["ran"];
    ui.item_end("done", {{"run_id", *id}, {"summary", out->summary}});
  }
  return failed;
}

}  // namespace

void register_batch(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("batch", "Run a study from a job file (TOML): resumable, shardable (Slurm, MPI)");
  cmd->add_option("job", o->job, "job file (see docs/batch.md)")->required();
  cmd->add_option("--db", o->db, "output database (default: the job's 'db', else $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  cmd->add_flag("--resume", o->resume, "skip the items already stored in the database");
  cmd->add_flag("--dry-run", o->dry_run, "print the work items and the memory / time estimate, run nothing");
  cmd->add_option("--shard", o->shard, "run shard I of N (0 <= I < N) into its own database FILE.shard-I-of-N.db");
  cmd->add_flag("--json", o->json, "one JSON object per line for every event");
  cmds.emplace_back(cmd, [o]() {
    int si = 0, sn = 1;
    if (!o->shard.empty()) parse_shard(o->shard, &si, &sn);
    Job job = load_job(o->job);
    std::vector<WorkItem> all = expand_items(job);
    MpiWorld world;
    if (o->shard.empty() && std::getenv("SLURM_ARRAY_TASK_COUNT") && std::getenv("SLURM_ARRAY_TASK_ID")) {
      int id = std::atoi(std::getenv("SLURM_ARRAY_TASK_ID"));
      int lo = std::getenv("SLURM_ARRAY_TASK_MIN") ? std::atoi(std::getenv("SLURM_ARRAY_TASK_MIN")) : 0;
      sn = std::atoi(std::getenv("SLURM_ARRAY_TASK_COUNT"));
      si = id - lo;
      if (sn < 1 || si < 0 || si >= sn)
        fail_usage("Slurm array task " + std::to_string(id) + " (min " + std::to_string(lo) + ", count " + std::to_string(sn) +
                   ") does not give a shard 0 <= I < N; use a contiguous --array range or --shard I/N");
    } else if (o->shard.empty()) {
      world = mpi_world_init();
      if (world.active) si = world.rank, sn = world.size;
    }
    std::string db_path = resolve_db_path(!o->db.empty() ? o->db : job.db);
    const std::string main_db = db_path;
    if (sn > 1) db_path = shard_db_path(db_path, si, sn);
    std::vector<WorkItem> mine = shard_items(all, si, sn);
    if (o->dry_run) {
      int rc = dry_run(job, all, mine, si, sn, db_path, o->json);
      mpi_world_finalize(world);
      return rc;
    }

    std::unique_ptr<Database> db = open_database(db_path, false);
    BatchProgress ui(o->json, static_cast<int64_t>(mine.size()));
    if (sn > 1) ui.set_context({{"shard", si}});
    ui.event("start", {{"job", job.path}, {"db", db_path}, {"shard", si}, {"shards", sn}, {"items", mine.size()},
                       {"items_total", all.size()}, {"resume", o->resume}});
    if (!o->resume) {
      int64_t stored = 0;
      for (const auto& it : mine) {
        Result<std::optional<int64_t>> f = db->find_done_run(job.analyses[it.analysis].kind, it.resume_key);
        stored += f && f->has_value();
      }
      if (stored > 0)
        ui.message(std::to_string(stored) + " of these items are already in " + db_path +
                   "; they run again (pass --resume to skip them)");
    }
    RunControl control;
    std::map<std::string, int64_t> counts;
    int64_t failed = 0;
    {
      SignalInterrupt sig(control);
      failed = run_items(job, mine, *db, o->resume, ui, counts, control);
      ui.finish();
    }
    if (control.interrupted())
      throw InputError("interrupted; the items finished so far are stored in " + db_path +
                           " (run again with --resume to continue)",
                       ErrorCode::kInternal);

    std::string report_db = sn == 1 ? db_path : "";
    if (world.active) {  // rank 0 merges every rank's shard once all are done
      std::vector<std::string> markers;
      for (int r = 0; r < sn; ++r) markers.push_back(shard_db_path(main_db, r, sn) + ".done");
      mpi_barrier(world, markers[static_cast<size_t>(si)], markers);
      if (world.rank == 0) {
        db.reset();
        std::unique_ptr<Database> out = open_database(main_db, false);
        for (int r = 0; r < sn; ++r) {
          Result<MergeStats> st = out->merge_from(shard_db_path(main_db, r, sn));
          if (!st) throw InputError(st.error().message, st.error().code);
          ui.event("merged", {{"shard", shard_db_path(main_db, r, sn)}, {"added", st->runs_added}, {"present", st->runs_present}});
        }
        ui.message("rank 0 merged " + std::to_string(sn) + " shards into " + main_db);
        report_db = main_db;
      }
    }
    if (!report_db.empty()) {
      db.reset();
      std::unique_ptr<Database> rdb = open_database(report_db, false);
      write_reports(job, *rdb, all, ui);
    } else if (!job.reports.empty() && world.rank == 0) {
      ui.message("reports are written after merging: mechscope merge --out " + main_db + " " +
                 shard_db_path(main_db, 0, sn) + " ..., then mechscope batch " + job.path + " --db " + main_db + " --resume");
    }
    mpi_world_finalize(world);
    ui.event("done", {{"ran", counts["ran"]}, {"skipped", counts["skipped"]}, {"failed", failed}, {"db", db_path}});
    if (!o->json)
      std::printf("%lld items ran, %lld already stored, %lld failed; database %s\n", static_cast<long long>(counts["ran"]),
                  static_cast<long long>(counts["skipped"]), static_cast<long long>(failed), db_path.c_str());
    if (failed > 0) throw InputError(std::to_string(failed) + " item(s) failed (see above); the others are stored", ErrorCode::kInternal);
    return 0;
  });
}

}  // namespace ms::app
