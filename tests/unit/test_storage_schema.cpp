// Schema checks: pragmas of a fresh file, forward migrations from each older version with data
// kept, newer versions refused untouched, and non-mechscope / corrupt files refused clearly.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "storage/database.h"
#include "tests/support/test_support.h"
#include "tests/unit/test_storage_fixtures.h"

namespace fs = std::filesystem;

namespace ms {
namespace {

// Raw SQLite access, as any other client would have.
class Raw {
 public:
  explicit Raw(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &m_db), SQLITE_OK);
    sqlite3_busy_timeout(m_db, 5000);
  }
  ~Raw() { sqlite3_close(m_db); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "") << "\n" << sql;
    sqlite3_free(err);
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(m_db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(m_db);
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
  }

 private:
  sqlite3* m_db = nullptr;
};

std::string new_path(const std::string& name) { return test::temp_dir("schema") + "/" + name; }

TEST(Schema, FreshFile) {
  std::string path = new_path("fresh.db");
  auto db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ((*db)->schema_version(), kSchemaVersion);
  Raw raw(path);
  EXPECT_EQ(raw.text("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(raw.text("PRAGMA application_id"), std::to_string(0x4D534350));
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  for (const char* table : {"models", "runs", "inputs", "head_scores", "tensors", "circuits", "circuit_nodes",
                            "circuit_edges", "run_links", "file_hashes", "feature_cards", "feature_examples"})
    EXPECT_EQ(raw.text(std::string("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '") + table + "'"),
              table);
  // Foreign keys are enforced on our connections: a score for a missing run is refused.
  RunResults r;
  r.links.push_back({0, "derived-from", 42});
  EXPECT_FALSE((*db)->store_run({"sinks"}, r).ok());
}

TEST(Schema, EmptyFileBecomesADatabase) {
  std::string path = new_path("empty.db");
  test::write_file(path, "");
  auto db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ((*db)->schema_version(), kSchemaVersion);
}

// Version 1 as released: no progress / resume_key columns, no file_hashes table.
void fill_version_1(const std::string& path) {
  OpenOptions o;
  o.schema_version = 1;
  {
    auto db = Database::open(path, o);
    ASSERT_TRUE(db.ok()) << db.error().message;
    EXPECT_EQ((*db)->schema_version(), 1);
  }
  Raw raw(path);
  EXPECT_EQ(raw.text("PRAGMA user_version"), "1");
  EXPECT_EQ(raw.text("SELECT count(*) FROM sqlite_master WHERE name = 'file_hashes'"), "0");
  raw.exec(
      "INSERT INTO models (id, path, architecture, config_json, content_hash, n_params) "
      "VALUES (1, '/m/gpt2', 'gpt2', '{\"n_layers\":2,\"n_heads\":2}', 'sha256:old', 99);"
      "INSERT INTO runs (id, kind, model_id, params_json, command, mechscope_version, status, started_at, finished_at) "
      "VALUES (1, 'sinks', 1, '{\"k\":1}', 'mechscope sinks', '0.0.9', 'done', '2024-01-01T00:00:00Z', '2024-01-01T00:01:00Z');"
      "INSERT INTO runs (id, kind, mechscope_version, status, error) VALUES (2, 'heads', '0.0.9', 'failed', 'oom');"
      "INSERT INTO inputs (run_id, idx, text, token_ids, tokens) VALUES (1, 0, 'hello', '[1,2]', '[\"he\",\"llo\"]');"
      "INSERT INTO head_scores VALUES (1, 'sink_rate', 0, 0, 0.5), (1, 'sink_rate', 0, 1, 0.25),"
      " (1, 'sink_rate', 1, 0, 0.125), (1, 'sink_rate', 1, 1, 1.0);"
      "INSERT INTO tensors (run_id, name, dtype, shape, compression, raw_bytes, data) "
      "VALUES (1, 'v', 'int32', '[2]', 'none', 8, x'0100000002000000');"
      "INSERT INTO run_links VALUES (2, 'derived-from', 1);");
}

TEST(Schema, MigratesForwardFromEveryOlderVersion) {
  for (int from = 0; from < kSchemaVersion; ++from) {
    SCOPED_TRACE("from version " + std::to_string(from));
    std::string path = new_path("v" + std::to_string(from) + ".db");
    if (from == 1) fill_version_1(path);
    if (from == 0) test::write_file(path, "");
    auto db = Database::open(path);
    ASSERT_TRUE(db.ok()) << db.error().message;
    EXPECT_EQ((*db)->schema_version(), kSchemaVersion);
    Raw raw(path);
    EXPECT_EQ(raw.text("PRAGMA user_version"), std::to_string(kSchemaVersion));
    EXPECT_EQ((*db)->integrity_check().value(), "ok");
    if (from == 1) {  // the data is all there, with the new columns filled in
      RunInfo r = (*db)->get_run(1).value();
      EXPECT_EQ(r.spec.kind, "sinks");
      EXPECT_EQ(r.spec.params_json, "{\"k\":1}");
      EXPECT_EQ(r.mechscope_version, "0.0.9");
      EXPECT_EQ(r.status, RunStatus::kDone);
      EXPECT_EQ(r.progress, 1.0);
      EXPECT_EQ(r.spec.resume_key, "");
      EXPECT_EQ((*db)->get_run(2).value().error, "oom");
      EXPECT_EQ((*db)->get_run(2).value().progress, 0.0);
      HeadScores s = (*db)->get_head_scores(1, "sink_rate").value();
      EXPECT_EQ(s.values, (std::vector<double>{0.5, 0.25, 0.125, 1.0}));
      EXPECT_EQ((*db)->get_inputs(1).value().at(0).tokens, (std::vector<std::string>{"he", "llo"}));
      at::Tensor v = (*db)->get_tensor(1, "v").value();
      EXPECT_EQ(v.scalar_type(), at::kInt);
      EXPECT_EQ(v[1].item<int>(), 2);
      EXPECT_EQ((*db)->get_links(1).value().size(), 1u);
      EXPECT_EQ((*db)->get_model(1).value().content_hash, "sha256:old");
    }
    // And the migrated file takes new runs with every feature.
    int64_t id = (*db)->store_run(test::keyed_spec("heads", "key-1"), test::demo_results()).value();
    EXPECT_EQ((*db)->find_done_run("heads", "key-1").value(), id);
  }
}

TEST(Schema, MigrationIsIdempotentAndConcurrentSafe) {
  std::string path = new_path("twice.db");
  fill_version_1(path);
  auto a = Database::open(path);
  auto b = Database::open(path);  // sees version 2 already: nothing to do
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*b)->schema_version(), kSchemaVersion);
  EXPECT_EQ((*b)->get_head_scores(1).value().size(), 1u);
}

void expect_refused_untouched(const std::string& path, const std::string& needle) {
  std::string before = test::read_file(path);
  Result<std::unique_ptr<Database>> db = Database::open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kBadInput);
  EXPECT_NE(db.error().message.find(path), std::string::npos) << db.error().message;
  EXPECT_NE(db.error().message.find(needle), std::string::npos) << db.error().message;
  EXPECT_EQ(test::read_file(path), before) << "the file was modified";
  EXPECT_FALSE(fs::exists(path + "-wal") && fs::file_size(path + "-wal") > 0);
}

TEST(Schema, NewerVersionRefusedUnmodified) {
  std::string path = new_path("newer.db");
  {
    auto db = Database::open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->store_run({"sinks"}, test::demo_results()).ok());
  }
  { Raw(path).exec("PRAGMA user_version = 99"); }
  expect_refused_untouched(path, "newer than this mechscope supports");
  EXPECT_EQ(Raw(path).text("PRAGMA user_version"), "99");

  // The same for a file in rollback-journal mode: opening must not switch it to WAL either.
  std::string rollback = new_path("newer-rollback.db");
  {
    Raw raw(rollback);
    raw.exec("PRAGMA application_id = 1297302352; CREATE TABLE future (x); PRAGMA user_version = 7;");
  }
  expect_refused_untouched(rollback, "schema version 7");
  EXPECT_EQ(Raw(rollback).text("PRAGMA journal_mode"), "delete");
}

TEST(Schema, ForeignFilesRefused) {
  std::string text = new_path("notes.txt");
  test::write_file(text, "these are my notes, not a database\n" + std::string(5000, 'x'));
  expect_refused_untouched(text, "not a valid mechscope database");

  std::string other = new_path("other.sqlite");
  { Raw(other).exec("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('ada');"); }
  expect_refused_untouched(other, "not a mechscope database");

  std::string app = new_path("app.sqlite");
  { Raw(app).exec("PRAGMA application_id = 42; CREATE TABLE t (x);"); }
  expect_refused_untouched(app, "another program");

  std::string dir = test::temp_dir("schema-dir");
  Result<std::unique_ptr<Database>> d = Database::open(dir);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, ErrorCode::kBadInput);

  OpenOptions must_exist;
  must_exist.create = false;
  Result<std::unique_ptr<Database>> missing = Database::open(new_path("missing.db"), must_exist);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kBadInput);
  EXPECT_NE(missing.error().message.find("no such database"), std::string::npos);
}

// A real database with damaged pages: every call fails with kBadInput, none crashes.
TEST(Schema, CorruptDatabaseGivesBadInput) {
  std::string path = new_path("corrupt.db");
  {
    auto db = Database::open(path);
    ASSERT_TRUE(db.ok());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*db)->store_run({"sinks"}, test::demo_results()).ok());
  }
  std::string bytes = test::read_file(path);
  ASSERT_GT(bytes.size(), 4096u * 3);
  for (size_t i = 100; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131) ^ 0x5a);  // keep the header
  test::write_file(path, bytes);
  Result<std::unique_ptr<Database>> db = Database::open(path);
  if (db.ok()) {
    Result<std::vector<RunSummary>> runs = (*db)->list_runs();
    ASSERT_FALSE(runs.ok());
    EXPECT_EQ(runs.error().code, ErrorCode::kBadInput) << runs.error().message;
  } else {
    EXPECT_EQ(db.error().code, ErrorCode::kBadInput) << db.error().message;
    EXPECT_NE(db.error().message.find(path), std::string::npos);
  }

  std::string truncated = new_path("truncated.db");
  {
    auto t = Database::open(truncated);
    ASSERT_TRUE(t.ok());
    for (int i = 0; i < 20; ++i) ASSERT_TRUE((*t)->store_run({"sinks"}, test::demo_results(32, 32)).ok());
  }
  fs::resize_file(truncated, fs::file_size(truncated) / 3);
  Result<std::unique_ptr<Database>> t = Database::open(truncated);
  bool failed_cleanly = !t.ok() && t.error().code == ErrorCode::kBadInput;
  if (t.ok()) {
    Result<std::vector<HeadScores>> s = (*t)->get_head_scores(20);
    Result<std::string> check = (*t)->integrity_check();
    failed_cleanly = (!s.ok() && s.error().code == ErrorCode::kBadInput) ||
                     (!check.ok() && check.error().code == ErrorCode::kBadInput) || (check.ok() && *check != "ok");
  }
  EXPECT_TRUE(failed_cleanly);
}

}  // namespace
}  // namespace ms
