// Fuzz target: a mechscope SQLite database as `runs`, `report` and `merge` open it: every run, its
// inputs, scores, tensors (decoded blobs), circuits and links, the models, then (when it holds
// runs) a report and a merge into a fresh database.
#include <ATen/ATen.h>

#include <filesystem>

#include "fuzz/fuzz_support.h"
#include "report/report.h"
#include "storage/database.h"

MECHSCOPE_FUZZ_TARGET(database) {
  using namespace ms;
  namespace fs = std::filesystem;
  const std::string path = fuzz::write_file("runs.db", {reinterpret_cast<const char*>(data), size});
  std::error_code ec;
  for (const char* suffix : {"-journal", "-wal", "-shm"}) fs::remove(path + suffix, ec);
  OpenOptions opts;
  opts.create = false;
  auto db = Database::open(path, opts);
  if (!fuzz::accept(db, "Database::open")) return;
  Database& d = *db.value();
  fuzz::accept(d.list_models(), "list_models");
  auto runs = d.list_runs();
  if (!fuzz::accept(runs, "list_runs")) return;
  std::vector<int64_t> ids;
  for (const RunSummary& s : runs.value()) {
    const int64_t id = s.run.id;
    ids.push_back(id);
    fuzz::accept(d.get_run(id), "get_run");
    fuzz::accept(d.get_inputs(id), "get_inputs");
    fuzz::accept(d.get_head_scores(id), "get_head_scores");
    fuzz::accept(d.get_circuits(id), "get_circuits");
    fuzz::accept(d.get_links(id), "get_links");
    fuzz::accept(d.get_feature_cards(id), "get_feature_cards");
    fuzz::accept(d.count_feature_cards(id), "count_feature_cards");
    auto tensors = d.list_tensors(id);
    if (fuzz::accept(tensors, "list_tensors"))
      for (const TensorInfo& t : tensors.value()) fuzz::accept(d.get_tensor(id, t.name), "get_tensor");
    if (s.run.spec.model_id > 0) fuzz::accept(d.get_model(s.run.spec.model_id), "get_model");
  }
  if (ids.empty()) return;
  ReportOptions ro;
  ro.format = ReportFormat::kHtml;
  ro.out = fuzz::scratch_dir() + "/report.html";
  ro.force = true;
  fuzz::accept(write_report(d, ids, ro), "write_report");
  const std::string merged = fuzz::scratch_dir() + "/merged.db";
  fs::remove(merged, ec);
  auto out = Database::open(merged);
  if (!out) std::abort();
  fuzz::accept(out.value()->merge_from(path), "merge_from");
}
