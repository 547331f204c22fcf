// The database schema as an ordered list of migrations: step N takes a file from version N-1 to
// N and ends by setting PRAGMA user_version = N. Steps are never edited once released; a change
// is a new step (see docs/storage.md for the policy).
#include "storage/schema.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/base/result.h"
#include "storage/database.h"

namespace ms::schema {
namespace {

// Version 1: models, runs and their results.
constexpr const char* kStep1 = R"sql(
PRAGMA application_id = 1297302352;
CREATE TABLE models (
  id            INTEGER PRIMARY KEY,
  path          TEXT NOT NULL,
  architecture  TEXT NOT NULL,
  config_json   TEXT NOT NULL,
  content_hash  TEXT NOT NULL,
  n_params      INTEGER NOT NULL,
  created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  UNIQUE (content_hash, config_json)
);
CREATE TABLE runs (
  id                 INTEGER PRIMARY KEY,
  kind               TEXT NOT NULL,
  model_id           INTEGER REFERENCES models(id) ON DELETE RESTRICT,
  params_json        TEXT NOT NULL DEFAULT '{}',
  command            TEXT NOT NULL DEFAULT '',
  label              TEXT NOT NULL DEFAULT '',
  mechscope_version  TEXT NOT NULL,
  status             TEXT NOT NULL
                     CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  started_at         TEXT,
  finished_at        TEXT,
  error              TEXT,
  pid                INTEGER,
  host               TEXT
);
CREATE INDEX runs_by_model ON runs(model_id);
CREATE INDEX runs_by_kind ON runs(kind, status);
CREATE TABLE inputs (
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  idx        INTEGER NOT NULL,
  text       TEXT NOT NULL,
  token_ids  TEXT NOT NULL DEFAULT '[]',
  tokens     TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;
CREATE TABLE head_scores (
  run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  metric  TEXT NOT NULL,
  layer   INTEGER NOT NULL,
  head    INTEGER NOT NULL,
  value   REAL NOT NULL,
  PRIMARY KEY (run_id, metric, layer, head)
) WITHOUT ROWID;
CREATE TABLE tensors (
  id           INTEGER PRIMARY KEY,
  run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name         TEXT NOT NULL,
  dtype        TEXT NOT NULL,
  shape        TEXT NOT NULL,
  compression  TEXT NOT NULL CHECK (compression IN ('none', 'zlib')),
  raw_bytes    INTEGER NOT NULL,
  data         BLOB NOT NULL,
  meta_json    TEXT NOT NULL DEFAULT '{}',
  UNIQUE (run_id, name)
);
CREATE TABLE circuits (
  id         INTEGER PRIMARY KEY,
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name       TEXT NOT NULL,
  meta_json  TEXT NOT NULL DEFAULT '{}',
  UNIQUE (run_id, name)
);
CREATE TABLE circuit_nodes (
  circuit_id  INTEGER NOT NULL REFERENCES circuits(id) ON DELETE CASCADE,
  idx         INTEGER NOT NULL,
  name        TEXT NOT NULL,
  kind        TEXT NOT NULL,
  layer       INTEGER NOT NULL,
  head        INTEGER NOT NULL,
  score       REAL,
  PRIMARY KEY (circuit_id, idx)
) WITHOUT ROWID;
CREATE TABLE circuit_edges (
  circuit_id  INTEGER NOT NULL,
  idx         INTEGER NOT NULL,
  src         INTEGER NOT NULL,
  dst         INTEGER NOT NULL,
  score       REAL,
  PRIMARY KEY (circuit_id, idx),
  UNIQUE (circuit_id, src, dst),
  FOREIGN KEY (circuit_id, src) REFERENCES circuit_nodes(circuit_id, idx) ON DELETE CASCADE,
  FOREIGN KEY (circuit_id, dst) REFERENCES circuit_nodes(circuit_id, idx) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE run_links (
  run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  relation       TEXT NOT NULL,
  source_run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  PRIMARY KEY (run_id, relation, source_run_id)
) WITHOUT ROWID;
CREATE INDEX run_links_by_source ON run_links(source_run_id);
PRAGMA user_version = 1;
)sql";

// Version 2: resumable work (progress, resume keys) and the weight-file hash cache.
constexpr const char* kStep2 = R"sql(
ALTER TABLE runs ADD COLUMN progress REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN resume_key TEXT NOT NULL DEFAULT '';
UPDATE runs SET progress = 1 WHERE status = 'done';
CREATE INDEX runs_by_resume_key ON runs(kind, resume_key) WHERE resume_key <> '';
CREATE TABLE file_hashes (
  path       TEXT PRIMARY KEY,
  size       INTEGER NOT NULL,
  mtime_ns   INTEGER NOT NULL,
  sha256     TEXT NOT NULL,
  hashed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
PRAGMA user_version = 2;
)sql";

// Version 3: SAE feature dashboards (mechscope sae features): per run and feature the firing
// count, maximum, histogram (int64 little-endian counts, equal bins over [0, hist_max)) and logit
// effects; per example its rank, place, activation and token window (acts: float32 little-endian).
constexpr const char* kStep3 = R"sql(
CREATE TABLE feature_cards (
  run_id         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  feature        INTEGER NOT NULL,
  n_tokens       INTEGER NOT NULL,
  n_firing       INTEGER NOT NULL,
  max_act        REAL NOT NULL,
  hist_max       REAL NOT NULL,
  histogram      BLOB NOT NULL,
  top_logits     TEXT NOT NULL DEFAULT '[]',
  bottom_logits  TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (run_id, feature)
) WITHOUT ROWID;
CREATE TABLE feature_examples (
  run_id        INTEGER NOT NULL,
  feature       INTEGER NOT NULL,
  rank          INTEGER NOT NULL,
  prompt        INTEGER NOT NULL,
  position      INTEGER NOT NULL,
  activation    REAL NOT NULL,
  window_start  INTEGER NOT NULL,
  token_ids     TEXT NOT NULL DEFAULT '[]',
  tokens        TEXT NOT NULL DEFAULT '[]',
  acts          BLOB NOT NULL,
  PRIMARY KEY (run_id, feature, rank),
  FOREIGN KEY (run_id, feature) REFERENCES feature_cards(run_id, feature) ON DELETE CASCADE
) WITHOUT ROWID;
PRAGMA user_version = 3;
)sql";

constexpr const char* kSteps[] = {kStep1, kStep2, kStep3};
constexpr int kLatest = static_cast<int>(sizeof(kSteps) / sizeof(kSteps[0]));
static_assert(kLatest == kSchemaVersion, "kSchemaVersion must name the last migration step");

}  // namespace

namespace {

// The CREATE statements (sqlite_master) of every table and index, as the migrations leave them.
std::string schema_text(sql::Connection& c) {
  sql::Stmt st(c.handle(), "SELECT type, name, coalesce(sql, '') FROM sqlite_master "
               "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name", &c.path(), false);
  std::string out;
  while (st.step()) out += st.text(0) + " " + st.text(1) + ": " + st.text(2) + "\n";
  return out;
}

// The last line of a SQLite error (its reason, after the statement text), without the ": ".
std::string sqlite_reason(const std::string& what) {
  std::string r = what.substr(what.rfind('\n') == std::string::npos ? 0 : what.rfind('\n') + 1);
  return r.rfind(": ", 0) == 0 ? r.substr(2) : r;
}

// A file whose schema text differs from what this build's migrations create (a damaged or edited
// sqlite_master: a renamed column, a dropped table) is refused at open, before any query fails
// on it half-way through a command.
void check_schema(sql::Connection& c) {
  static const std::string expected = [] {
    sql::Connection mem(":memory:", false, true);
    for (const char* step : kSteps) mem.exec(step);
    return schema_text(mem);
  }();
  std::string got;
  try {
    got = schema_text(c);
  } catch (const InputError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw InputError(c.path() + ": not a valid mechscope database (" + e.what() + "); pass another file with --db");
  }
  if (got == expected) return;
  size_t i = 0;
  while (i < got.size() && i < expected.size() && got[i] == expected[i]) ++i;
  const size_t line = got.rfind('\n', i == 0 ? 0 : i - 1);
  const std::string where = got.substr(line == std::string::npos ? 0 : line + 1, 120);
  throw InputError(c.path() + ": the database schema is not the one mechscope writes (differs at: " +
                   where.substr(0, where.find('\n')) + "); the file is damaged or was edited. Pass another file with --db");
}

}  // namespace

int prepare(sql::Connection& c, int target) {
  static_assert(kLatest >= 1, "at least one migration");
  if (target < 0 || target > kLatest) throw std::invalid_argument("schema version out of range");
  // Reading these is the first access to the file: a non-SQLite file fails here, untouched. These
  // queries cannot be wrong, so any SQLite error here ("unsupported file format": a damaged
  // header or schema format number) is the file's fault: bad input, not an internal error.
  int64_t app_id = 0, version = 0, n_tables = 0;
  // One statement, so one snapshot: read one by one, a process creating the database between
  // the reads made it look like another program's file (tables, but no application id yet).
  try {
    sql::Stmt& s = c.stmt(
        "SELECT (SELECT application_id FROM pragma_application_id), "
        "(SELECT user_version FROM pragma_user_version), "
        "(SELECT count(*) FROM sqlite_master WHERE type = 'table')");
    if (!s.step()) throw std::runtime_error("the database header cannot be read");
    app_id = s.i64(0);
    version = s.i64(1);
    n_tables = s.i64(2);
    s.reset();
  } catch (const InputError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw InputError(c.path() + ": not a valid mechscope database (" + e.what() +
                     "); pass another file with --db, or restore this one from a backup");
  }
  if (app_id != 0 && app_id != kApplicationId)
    throw InputError(c.path() + ": this SQLite file belongs to another program (application_id " +
                     std::to_string(app_id) + "), not mechscope; pass another file with --db");
  if (app_id == 0 && (version != 0 || n_tables != 0))
    throw InputError(c.path() + ": this SQLite file is not a mechscope database (it has " +
                     std::to_string(n_tables) + " tables of another program); pass another file "
                     "with --db, or a new path to create one");
  if (version < 0)  // found by fuzz_database: a negative user_version indexed kSteps[-n]
    throw InputError(c.path() + ": database schema version " + std::to_string(version) +
                     " is not valid; the file is damaged. Pass another file with --db");
  if (version > kLatest)
    throw InputError(c.path() + ": database schema version " + std::to_string(version) +
                     " is newer than this mechscope supports (" + std::to_string(kLatest) +
                     "); upgrade mechscope to read it. The file was not modified.");
  c.exec("PRAGMA foreign_keys = ON");
  if (c.scalar_i64("PRAGMA foreign_keys") != 1)
    throw std::runtime_error("this SQLite build has no foreign key support");
  // WAL: readers never block the writer and the writer never blocks readers. NORMAL sync is
  // durable against a killed process (not against power loss for the last transactions).
  c.exec("PRAGMA journal_mode = WAL");
  c.exec("PRAGMA synchronous = NORMAL");
  c.exec("PRAGMA cache_size = -32768");  // 32 MB: big result writes stay in memory until commit
  if (version >= target) {
    if (version == kLatest) check_schema(c);
    return static_cast<int>(version);
  }
  sql::WriteTransaction tx(c);
  version = c.scalar_i64("PRAGMA user_version");  // another process may have migrated meanwhile
  // A file whose tables are not those of the version its header names (damaged or edited: a
  // column of a later version already there) fails a migration step half-way; the transaction
  // rolls back and the file is refused as bad input, not as an internal error.
  for (int step = static_cast<int>(version) + 1; step <= target; ++step) {
    try {
      c.exec(kSteps[step - 1]);
    } catch (const InputError&) {
      throw;
    } catch (const std::exception& e) {
      throw InputError(c.path() + ": the database says schema version " + std::to_string(version) +
                       " but its tables are not that version's (migration step " + std::to_string(step) +
                       " failed: " + sqlite_reason(e.what()) +
                       "); the file is damaged or was edited. Nothing was changed; pass another file with --db");
    }
  }
  tx.commit();
  const int now = static_cast<int>(std::max<int64_t>(version, target));
  if (now == kLatest) check_schema(c);
  return now;
}

}  // namespace ms::schema
