// Merging databases (batch shards into one file): every finished run of a source database is
// copied with everything it holds, in one transaction, skipping runs already present.
#include <filesystem>
#include <map>

#include "storage/database_impl.h"
#include "storage/schema.h"

namespace ms {
namespace {

void copy_text(sql::Stmt& from, int col, sql::Stmt& to, int i) {
  if (from.is_null(col)) to.bind_null(i);
  else to.bind(i, from.text(col));
}
void copy_i64(sql::Stmt& from, int col, sql::Stmt& to, int i) {
  if (from.is_null(col)) to.bind_null(i);
  else to.bind(i, from.i64(col));
}
void copy_f64(sql::Stmt& from, int col, sql::Stmt& to, int i) {
  if (from.is_null(col)) to.bind_null(i);
  else to.bind(i, from.f64(col));
}

// The id of the source model in the destination, adding it when absent.
int64_t map_model(sql::Connection& src, sql::Connection& dst, int64_t src_id, MergeStats& st) {
  sql::Stmt& s = src.stmt("SELECT path, architecture, config_json, content_hash, n_params, created_at FROM models WHERE id = ?");
  s.bind(1, src_id);
  if (!s.step()) {
    s.reset();
    throw InputError(src.path() + ": run refers to model " + std::to_string(src_id) + ", which is missing");
  }
  sql::Stmt& f = dst.stmt("SELECT id FROM models WHERE content_hash = ? AND config_json = ?");
  f.bind(1, s.text(3)).bind(2, s.text(2));
  int64_t id = f.step() ? f.i64(0) : 0;
  f.reset();
  if (id == 0) {
    sql::Stmt& ins = dst.stmt(
        "INSERT INTO models (path, architecture, config_json, content_hash, n_params, created_at) VALUES (?, ?, ?, ?, ?, ?)");
    for (int i = 0; i < 4; ++i) ins.bind(i + 1, s.text(i));
    ins.bind(5, s.i64(4)).bind(6, s.text(5));
    ins.run();
    id = dst.last_insert_id();
    ++st.models_added;
  }
  s.reset();
  return id;
}

void copy_results(sql::Connection& src, sql::Connection& dst, int64_t from, int64_t to) {
  sql::Stmt& in = src.stmt("SELECT idx, text, token_ids, tokens FROM inputs WHERE run_id = ? ORDER BY idx");
  in.bind(1, from);
  while (in.step()) {
    sql::Stmt& w = dst.stmt("INSERT INTO inputs (run_id, idx, text, token_ids, tokens) VALUES (?, ?, ?, ?, ?)");
    w.bind(1, to).bind(2, in.i64(0)).bind(3, in.text(1)).bind(4, in.text(2)).bind(5, in.text(3)).run();
  }
  in.reset();
  sql::Stmt& hs = src.stmt("SELECT metric, layer, head, value FROM head_scores WHERE run_id = ?");
  hs.bind(1, from);
  while (hs.step()) {
    sql::Stmt& w = dst.stmt("INSERT INTO head_scores (run_id, metric, layer, head, value) VALUES (?, ?, ?, ?, ?)");
    w.bind(1, to).bind(2, hs.text(0)).bind(3, hs.i64(1)).bind(4, hs.i64(2));
    copy_f64(hs, 3, w, 5);
    w.run();
  }
  hs.reset();
  sql::Stmt& t = src.stmt(
      "SELECT name, dtype, shape, compression, raw_bytes, data, meta_json FROM tensors WHERE run_id = ? ORDER BY id");
  t.bind(1, from);
  while (t.step()) {
    sql::Stmt& w = dst.stmt(
        "INSERT INTO tensors (run_id, name, dtype, shape, compression, raw_bytes, data, meta_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    std::string data = t.blob(5);
    w.bind(1, to).bind(2, t.text(0)).bind(3, t.text(1)).bind(4, t.text(2)).bind(5, t.text(3)).bind(6, t.i64(4));
    w.bind_blob(7, data.data(), data.size()).bind(8, t.text(6)).run();
  }
  t.reset();
  std::vector<std::pair<int64_t, int64_t>> circuits;  // source id -> destination id
  sql::Stmt& c = src.stmt("SELECT id, name, meta_json FROM circuits WHERE run_id = ? ORDER BY id");
  c.bind(1, from);
  while (c.step()) {
    sql::Stmt& w = dst.stmt("INSERT INTO circuits (run_id, name, meta_json) VALUES (?, ?, ?)");
    w.bind(1, to).bind(2, c.text(1)).bind(3, c.text(2)).run();
    circuits.emplace_back(c.i64(0), dst.last_insert_id());
  }
  c.reset();
  for (auto [cf, ct] : circuits) {
    sql::Stmt& n = src.stmt("SELECT idx, name, kind, layer, head, score FROM circuit_nodes WHERE circuit_id = ? ORDER BY idx");
    n.bind(1, cf);
    while (n.step()) {
      sql::Stmt& w = dst.stmt(
          "INSERT INTO circuit_nodes (circuit_id, idx, name, kind, layer, head, score) VALUES (?, ?, ?, ?, ?, ?, ?)");
      w.bind(1, ct).bind(2, n.i64(0)).bind(3, n.text(1)).bind(4, n.text(2)).bind(5, n.i64(3)).bind(6, n.i64(4));
      copy_f64(n, 5, w, 7);
      w.run();
    }
    n.reset();
    sql::Stmt& e = src.stmt("SELECT idx, src, dst, score FROM circuit_edges WHERE circuit_id = ? ORDER BY idx");
    e.bind(1, cf);
    while (e.step()) {
      sql::Stmt& w = dst.stmt("INSERT INTO circuit_edges (circuit_id, idx, src, dst, score) VALUES (?, ?, ?, ?, ?)");
      w.bind(1, ct).bind(2, e.i64(0)).bind(3, e.i64(1)).bind(4, e.i64(2));
      copy_f64(e, 3, w, 5);
      w.run();
    }
    e.reset();
  }
  storage_detail::copy_feature_rows(src, dst, from, to);
}

}  // namespace

Result<MergeStats> Database::merge_from(const std::string& source_path) {
  Result<MergeStats> r = guard([&]() {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(source_path, ec)) fail_input(source_path + ": no such database file");
    sql::Connection src(source_path, true, false);
    int64_t app_id = src.scalar_i64("PRAGMA application_id");
    int64_t version = src.scalar_i64("PRAGMA user_version");
    if (app_id != schema::kApplicationId)
      fail_input(source_path + ": not a mechscope database (application_id " + std::to_string(app_id) + ")");
    if (version != kSchemaVersion)
      fail_input(source_path + ": database schema version " + std::to_string(version) + ", but this mechscope writes version " +
                 std::to_string(kSchemaVersion) + (version > kSchemaVersion ? "; upgrade mechscope to merge it"
                                                                           : "; open it once with this mechscope (e.g. `mechscope runs --db FILE`) to migrate it, then merge") +
                 ". Nothing was merged.");
    if (std::filesystem::equivalent(source_path, path(), ec)) fail_input(source_path + ": cannot merge a database into itself");
    MergeStats st;
    sql::Connection& dst = m_impl->conn;
    sql::ReadTransaction rt(src);
    sql::WriteTransaction tx(dst);
    std::map<int64_t, int64_t> ids;  // source run -> destination run
    sql::Stmt& runs = src.stmt(
        "SELECT id, kind, model_id, params_json, command, label, mechscope_version, status, created_at, started_at, "
        "finished_at, error, pid, host, progress, resume_key FROM runs ORDER BY id");
    while (runs.step()) {
      if (runs.text(7) != "done") {
        ++st.runs_not_done;
        continue;
      }
      const std::string kind = runs.text(1), key = runs.text(15);
      int64_t existing = 0;
      if (!key.empty()) {
        sql::Stmt& f = dst.stmt("SELECT id FROM runs WHERE kind = ? AND resume_key = ? AND status = 'done' ORDER BY id LIMIT 1");
        f.bind(1, kind).bind(2, key);
        if (f.step()) existing = f.i64(0);
        f.reset();
      } else {
        sql::Stmt& f = dst.stmt(
            "SELECT id FROM runs WHERE kind = ? AND params_json = ? AND created_at = ? AND status = 'done' "
            "AND pid IS ? AND host IS ? ORDER BY id LIMIT 1");
        f.bind(1, kind).bind(2, runs.text(3)).bind(3, runs.text(8));
        copy_i64(runs, 12, f, 4);
        copy_text(runs, 13, f, 5);
        if (f.step()) existing = f.i64(0);
        f.reset();
      }
      if (existing != 0) {
        ids[runs.i64(0)] = existing;
        ++st.runs_present;
        continue;
      }
      int64_t model = runs.is_null(2) ? 0 : map_model(src, dst, runs.i64(2), st);
      sql::Stmt& w = dst.stmt(
          "INSERT INTO runs (kind, model_id, params_json, command, label, mechscope_version, status, created_at, "
          "started_at, finished_at, error, pid, host, progress, resume_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      w.bind(1, kind);
      if (model > 0) w.bind(2, model);
      else w.bind_null(2);
      for (int col = 3; col <= 11; ++col) copy_text(runs, col, w, col);
      copy_i64(runs, 12, w, 12);
      copy_text(runs, 13, w, 13);
      copy_f64(runs, 14, w, 14);
      w.bind(15, key);
      w.run();
      int64_t to = dst.last_insert_id();
      ids[runs.i64(0)] = to;
      copy_results(src, dst, runs.i64(0), to);
      ++st.runs_added;
    }
    runs.reset();
    sql::Stmt& links = src.stmt("SELECT run_id, relation, source_run_id FROM run_links");
    while (links.step()) {
      auto a = ids.find(links.i64(0)), b = ids.find(links.i64(2));
      if (a == ids.end() || b == ids.end()) continue;
      sql::Stmt& w = dst.stmt("INSERT OR IGNORE INTO run_links (run_id, relation, source_run_id) VALUES (?, ?, ?)");
      w.bind(1, a->second).bind(2, links.text(1)).bind(3, b->second).run();
    }
    links.reset();
    tx.commit();
    return st;
  });
  // A source whose rows break the destination's constraints (found by fuzz_database: duplicate
  // scores that a damaged index let through) is bad input; the transaction rolled back.
  if (!r && r.error().code == ErrorCode::kInternal && r.error().message.find("constraint failed") != std::string::npos)
    return Error{ErrorCode::kBadInput, source_path + ": its rows break the database's constraints (" + r.error().message +
                                           "); the file is damaged. Nothing was merged."};
  return r;
}

}  // namespace ms
