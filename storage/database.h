// Database: the one SQLite file that keeps every analysis run with its provenance. Analyses store
// runs and their results through this small typed API; views, the CLI and reports read them back.
// SQLite stays behind this header: callers never see a statement or a handle.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "storage/records.h"

namespace ms {

class Model;

// The schema this build writes (PRAGMA user_version). Older files are migrated forward on open;
// newer ones are refused and left untouched.
constexpr int kSchemaVersion = 3;

// Where the database lives: `flag` (--db) if given, else $MECHSCOPE_DB, else
// $XDG_DATA_HOME/mechscope/mechscope.db, else ~/.local/share/mechscope/mechscope.db.
std::string resolve_db_path(const std::string& flag = "");

struct OpenOptions {
  bool create = true;                   // create the file (and its folders) when missing
  int schema_version = kSchemaVersion;  // tests only: stop migrating at an older version
  bool recover = true;                  // mark runs left 'running' by dead processes as failed
};

// Called inside a write transaction with the number of result rows written so far.
using WriteProgress = std::function<void(int64_t rows)>;

// A run to store in one go (store_runs): its spec and its results.
struct RunWrite {
  RunSpec spec;
  RunResults results;
};

// list_runs() filter; empty fields match everything.
struct RunFilter {
  std::string kind;
  std::optional<RunStatus> status;
  int64_t model_id = 0;
  int64_t limit = 0;        // 0: all; newest first
};

// A run with what list views show next to it.
struct RunSummary {
  RunInfo run;
  std::string model_path, model_architecture;
  int64_t n_inputs = 0, n_scores = 0, n_metrics = 0, n_tensors = 0, n_circuits = 0;
};

// merge_from(): what was copied.
struct MergeStats {
  int64_t runs_added = 0;      // done runs copied in
  int64_t runs_present = 0;    // done runs already here (same resume key, or the same run), skipped
  int64_t runs_not_done = 0;   // queued / running / failed / cancelled runs of the source, skipped
  int64_t models_added = 0;
};

class Database;

// For commands: resolve_db_path(db_flag) and open it (creating it unless must_exist); throws
// InputError with the reason on failure (exit 3 for a bad file).
std::unique_ptr<Database> open_database(const std::string& db_flag, bool must_exist);

// One Database (one SQLite connection) per thread; other threads and processes open their own.
class Database {
 public:
  // Opens (creating and migrating as needed) the database at path. Errors: kBadInput for a file
  // that is not a SQLite database, is corrupt, belongs to another program or has a newer schema.
  static Result<std::unique_ptr<Database>> open(const std::string& path, const OpenOptions& opts = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  const std::string& path() const;
  int schema_version() const;

  // --- models ---
  // Returns the id of the model with the same content hash and config, adding it when new (the
  // stored path is updated to the latest one it was seen at).
  Result<int64_t> register_model(const ModelInfo& info);
  // From a loaded model: hashes its weight files (cached by path, size and mtime) or, for an
  // in-memory model, its tensors; see model_hash.h.
  Result<int64_t> register_model(const Model& model);
  Result<ModelInfo> get_model(int64_t id);
  Result<std::vector<ModelInfo>> list_models();

  // --- writing runs ---
  // The usual life of a run: begin_run() commits it as 'running' (visible to readers with its
  // progress); finish_run() writes all results and flips it to 'done' in one transaction, or
  // fail_run() records why it stopped. A process killed in between leaves the run without any
  // result; the next open() marks it failed.
  Result<int64_t> begin_run(const RunSpec& spec);
  Result<int64_t> queue_run(const RunSpec& spec);  // 'queued': a batch's pending work
  Status start_run(int64_t run_id);                // queued -> running, in this process
  Status set_progress(int64_t run_id, double progress);
  Status finish_run(int64_t run_id, const RunResults& results, const WriteProgress& progress = {});
  Status fail_run(int64_t run_id, const std::string& error);
  Status cancel_run(int64_t run_id, const std::string& reason = "cancelled by the user");
  // A finished run and its results in one transaction (for analyses that take no time).
  Result<int64_t> store_run(const RunSpec& spec, const RunResults& results,
                            const WriteProgress& progress = {});
  // Many finished runs in one transaction (batch items). A link whose source_run_id is -k links to
  // the k-th run of this call (1-based), stored in the same transaction.
  Result<std::vector<int64_t>> store_runs(const std::vector<RunWrite>& runs,
                                          const WriteProgress& progress = {});
  Status add_link(const RunLink& link);
  // Copies every 'done' run of the mechscope database at source_path (with its model, inputs,
  // scores, tensors, circuits and the links between copied runs) into this one, in one
  // transaction. Idempotent: a run already here (the same kind and resume key, or for runs
  // without a key the same kind, parameters, start time, host and pid) is skipped. The source is
  // opened read-only; one with another schema version than this build's is refused (kBadInput).
  Result<MergeStats> merge_from(const std::string& source_path);
  // Deletes a run and everything it holds (inputs, scores, tensors, circuits, links). A run that
  // a live process is still writing is refused.
  Status delete_run(int64_t run_id);

  // --- reading runs ---
  Result<RunInfo> get_run(int64_t run_id);
  Result<std::vector<RunSummary>> list_runs(const RunFilter& filter = {});
  // The newest 'done' run of this kind with this resume key, if any (batch resume).
  Result<std::optional<int64_t>> find_done_run(const std::string& kind, const std::string& resume_key);
  Result<std::vector<InputRecord>> get_inputs(int64_t run_id);
  // Every metric of the run, sorted by name; n_layers/n_heads come from the model's config
  // (or the largest stored index), absent heads are NaN.
  Result<std::vector<HeadScores>> get_head_scores(int64_t run_id);
  Result<HeadScores> get_head_scores(int64_t run_id, const std::string& metric);
  Result<std::vector<TensorInfo>> list_tensors(int64_t run_id);
  Result<at::Tensor> get_tensor(int64_t run_id, const std::string& name);  // CPU, stored dtype
  Result<std::vector<Circuit>> get_circuits(int64_t run_id);
  // Feature cards (storage/feature_records.cpp): those of `features` (empty: all, by feature
  // index), with their examples unless cards_only.
  Result<std::vector<FeatureCard>> get_feature_cards(int64_t run_id, const std::vector<int64_t>& features = {},
                                                     bool cards_only = false);
  Result<int64_t> count_feature_cards(int64_t run_id);
  // Links in both directions: where run_id was derived from, and runs derived from it.
  Result<std::vector<RunLink>> get_links(int64_t run_id);
  // PRAGMA integrity_check: "ok" or SQLite's list of problems.
  Result<std::string> integrity_check();

  struct Impl;

 private:
  explicit Database(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace ms
