// Reading runs back: runs and their summaries, inputs, head scores, tensors, circuits, links.
#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "storage/database_impl.h"
#include "core/base/json_input.h"
#include "storage/tensor_blob.h"

namespace ms {

using namespace storage_detail;

namespace {

// Column order shared by every query that reads a whole run.
#define MS_RUN_COLUMNS                                                                         \
  "r.id, r.kind, r.model_id, r.params_json, r.command, r.label, r.resume_key, "                \
  "r.mechscope_version, r.status, r.progress, r.created_at, r.started_at, r.finished_at, "     \
  "r.error, r.pid, r.host"

RunInfo read_run(const sql::Stmt& s) {
  RunInfo r;
  r.id = s.i64(0);
  r.spec.kind = s.text(1);
  r.spec.model_id = s.is_null(2) ? 0 : s.i64(2);
  r.spec.params_json = s.text(3);
  r.spec.command = s.text(4);
  r.spec.label = s.text(5);
  r.spec.resume_key = s.text(6);
  r.mechscope_version = s.text(7);
  r.status = parse_run_status(s.text(8)).value_or(RunStatus::kFailed);
  r.progress = s.f64(9);
  r.created_at = s.text(10);
  r.started_at = s.text(11);
  r.finished_at = s.text(12);
  r.error = s.text(13);
  r.pid = s.is_null(14) ? 0 : s.i64(14);
  r.host = s.text(15);
  return r;
}

std::vector<std::string> json_strings(const std::string& text, const std::string& where) {
  nlohmann::json j = ms::parse_json_or_discarded(text);
  std::vector<std::string> out;
  if (!j.is_array()) throw InputError(where + ": '" + text.substr(0, 40) + "' is not a JSON list");
  for (const auto& v : j) out.push_back(v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

double score_or_nan(const sql::Stmt& s, int col) { return s.is_null(col) ? NAN : s.f64(col); }

}  // namespace

Result<RunInfo> Database::get_run(int64_t run_id) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    sql::Stmt& s = c.stmt("SELECT " MS_RUN_COLUMNS " FROM runs r WHERE r.id = ?");
    s.bind(1, run_id);
    if (!s.step()) require_run(c, run_id);  // throws the "no run" message
    RunInfo r = read_run(s);
    s.reset();
    return r;
  });
}

Result<std::vector<RunSummary>> Database::list_runs(const RunFilter& f) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    sql::ReadTransaction snapshot(c);
    sql::Stmt& s = c.stmt(
        "SELECT " MS_RUN_COLUMNS ", coalesce(m.path, ''), coalesce(m.architecture, ''), "
        "(SELECT count(*) FROM inputs i WHERE i.run_id = r.id), "
        "(SELECT count(*) FROM head_scores h WHERE h.run_id = r.id), "
        "(SELECT count(DISTINCT metric) FROM head_scores h WHERE h.run_id = r.id), "
        "(SELECT count(*) FROM tensors t WHERE t.run_id = r.id), "
        "(SELECT count(*) FROM circuits ci WHERE ci.run_id = r.id) "
        "FROM runs r LEFT JOIN models m ON m.id = r.model_id "
        "WHERE (?1 = '' OR r.kind = ?1) AND (?2 = '' OR r.status = ?2) AND (?3 = 0 OR r.model_id = ?3) "
        "ORDER BY r.id DESC LIMIT ?4");
    s.bind(1, f.kind).bind(2, std::string(f.status ? run_status_name(*f.status) : ""));
    s.bind(3, f.model_id).bind(4, f.limit > 0 ? f.limit : int64_t{-1});
    std::vector<RunSummary> out;
    while (s.step()) {
      RunSummary r;
      r.run = read_run(s);
      r.model_path = s.text(16);
      r.model_architecture = s.text(17);
      r.n_inputs = s.i64(18);
      r.n_scores = s.i64(19);
      r.n_metrics = s.i64(20);
      r.n_tensors = s.i64(21);
      r.n_circuits = s.i64(22);
      out.push_back(std::move(r));
    }
    return out;
  });
}

Result<std::optional<int64_t>> Database::find_done_run(const std::string& kind, const std::string& resume_key) {
  return guard([&]() -> std::optional<int64_t> {
    sql::Stmt& s = m_impl->conn.stmt(
        "SELECT id FROM runs WHERE kind = ? AND resume_key = ? AND resume_key <> '' AND status = 'done' "
        "ORDER BY id DESC LIMIT 1");
    s.bind(1, kind).bind(2, resume_key);
    std::optional<int64_t> id;
    if (s.step()) id = s.i64(0);
    s.reset();
    return id;
  });
}

Result<std::vector<InputRecord>> Database::get_inputs(int64_t run_id) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    sql::ReadTransaction snapshot(c);
    require_run(c, run_id);
    sql::Stmt& s = c.stmt("SELECT idx, text, token_ids, tokens FROM inputs WHERE run_id = ? ORDER BY idx");
    s.bind(1, run_id);
    std::vector<InputRecord> out;
    while (s.step()) {
      InputRecord in;
      in.index = static_cast<int>(s.i64(0));
      in.text = s.text(1);
      std::string where = path() + ": run " + std::to_string(run_id) + " input " + std::to_string(in.index);
      nlohmann::json ids = ms::parse_json_or_discarded(s.text(2));
      if (!ids.is_array()) throw InputError(where + ": token_ids is not a JSON list");
      for (const auto& v : ids) {
        if (!v.is_number_integer()) throw InputError(where + ": token_ids holds a non-integer");
        in.token_ids.push_back(v.get<int32_t>());
      }
      in.tokens = json_strings(s.text(3), where);
      out.push_back(std::move(in));
    }
    return out;
  });
}

namespace {

std::vector<HeadScores> read_scores(sql::Connection& c, int64_t run_id, const std::string& metric) {
  require_run(c, run_id);
  int cfg_layers = 0, cfg_heads = 0;
  sql::Stmt& m = c.stmt("SELECT m.config_json FROM runs r JOIN models m ON m.id = r.model_id WHERE r.id = ?");
  m.bind(1, run_id);
  if (m.step()) config_dims(m.text(0), cfg_layers, cfg_heads);
  m.reset();
  sql::Stmt& s = c.stmt(
      "SELECT metric, layer, head, value FROM head_scores WHERE run_id = ?1 AND (?2 = '' OR metric = ?2) "
      "ORDER BY metric, layer, head");
  s.bind(1, run_id).bind(2, metric);
  struct Cell {
    int layer, head;
    double value;
  };
  std::map<std::string, std::vector<Cell>> cells;
  while (s.step()) {
    const int64_t layer = s.i64(1), head = s.i64(2);
    if (layer < 0 || layer >= kMaxScoreLayers || head < 0 || head >= kMaxScoreHeads)
      throw InputError("run " + std::to_string(run_id) + ": a score of '" + s.text(0) + "' is stored for layer " +
                       std::to_string(layer) + " head " + std::to_string(head) + ", outside 0..999 / 0..4095; the database is damaged");
    cells[s.text(0)].push_back({static_cast<int>(layer), static_cast<int>(head), s.f64(3)});
  }
  std::vector<HeadScores> out;
  for (auto& [name, list] : cells) {
    HeadScores h;
    h.metric = name;
    h.n_layers = cfg_layers;
    h.n_heads = cfg_heads;
    for (const Cell& x : list) {
      h.n_layers = std::max(h.n_layers, x.layer + 1);
      h.n_heads = std::max(h.n_heads, x.head + 1);
    }
    h.values.assign(static_cast<size_t>(h.n_layers) * h.n_heads, NAN);
    for (const Cell& x : list)
      h.values[static_cast<size_t>(x.layer) * h.n_heads + x.head] = x.value;
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace

Result<std::vector<HeadScores>> Database::get_head_scores(int64_t run_id) {
  return guard([&]() {
    sql::ReadTransaction snapshot(m_impl->conn);
    return read_scores(m_impl->conn, run_id, "");
  });
}

Result<HeadScores> Database::get_head_scores(int64_t run_id, const std::string& metric) {
  return guard([&]() {
    sql::ReadTransaction snapshot(m_impl->conn);
    std::vector<HeadScores> all = metric.empty() ? std::vector<HeadScores>{}
                                                 : read_scores(m_impl->conn, run_id, metric);
    if (all.empty())
      throw InputError(path() + ": run " + std::to_string(run_id) + " has no scores for metric '" + metric +
                           "'; `mechscope runs show " + std::to_string(run_id) + "` lists its metrics",
                       ErrorCode::kUsage);
    return all.front();
  });
}

Result<std::vector<TensorInfo>> Database::list_tensors(int64_t run_id) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    sql::ReadTransaction snapshot(c);
    require_run(c, run_id);
    sql::Stmt& s = c.stmt(
        "SELECT name, dtype, shape, raw_bytes, length(data), meta_json FROM tensors WHERE run_id = ? ORDER BY id");
    s.bind(1, run_id);
    std::vector<TensorInfo> out;
    while (s.step()) {
      TensorInfo t;
      t.name = s.text(0);
      t.dtype = s.text(1);
      t.shape = blob::parse_shape(s.text(2), path() + ": tensor '" + t.name + "'");
      t.raw_bytes = s.i64(3);
      t.stored_bytes = s.i64(4);
      t.meta_json = s.text(5);
      out.push_back(std::move(t));
    }
    return out;
  });
}

Result<at::Tensor> Database::get_tensor(int64_t run_id, const std::string& name) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    sql::ReadTransaction snapshot(c);
    require_run(c, run_id);
    sql::Stmt& s = c.stmt(
        "SELECT dtype, shape, compression, raw_bytes, data FROM tensors WHERE run_id = ? AND name = ?");
    s.bind(1, run_id).bind(2, name);
    if (!s.step())
      throw InputError(path() + ": run " + std::to_string(run_id) + " has no tensor '" + name +
                           "'; `mechscope runs show " + std::to_string(run_id) + "` lists its tensors",
                       ErrorCode::kUsage);
    std::string where = path() + ": run " + std::to_string(run_id) + " tensor '" + name + "'";
    blob::EncodedTensor e;
    e.dtype = s.text(0);
    e.shape = blob::parse_shape(s.text(1), where);
    e.compression = s.text(2);
    e.raw_bytes = s.i64(3);
    e.data = s.blob(4);
    s.reset();
    return blob::decode(e, where);
  });
}

Result<std::vector<Circuit>> Database::get_circuits(int64_t run_id) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    sql::ReadTransaction snapshot(c);
    require_run(c, run_id);
    std::vector<std::pair<int64_t, Circuit>> found;
    sql::Stmt& s = c.stmt("SELECT id, name, meta_json FROM circuits WHERE run_id = ? ORDER BY id");
    s.bind(1, run_id);
    while (s.step()) {
      Circuit ci;
      ci.name = s.text(1);
      ci.meta_json = s.text(2);
      found.emplace_back(s.i64(0), std::move(ci));
    }
    std::vector<Circuit> out;
    for (auto& [id, ci] : found) {
      sql::Stmt& n = c.stmt(
          "SELECT name, kind, layer, head, score FROM circuit_nodes WHERE circuit_id = ? ORDER BY idx");
      n.bind(1, id);
      while (n.step())
        ci.nodes.push_back({n.text(0), n.text(1), static_cast<int>(n.i64(2)), static_cast<int>(n.i64(3)),
                            score_or_nan(n, 4)});
      sql::Stmt& e = c.stmt("SELECT src, dst, score FROM circuit_edges WHERE circuit_id = ? ORDER BY idx");
      e.bind(1, id);
      while (e.step())
        ci.edges.push_back({static_cast<int>(e.i64(0)), static_cast<int>(e.i64(1)), score_or_nan(e, 2)});
      out.push_back(std::move(ci));
    }
    return out;
  });
}

Result<std::vector<RunLink>> Database::get_links(int64_t run_id) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    sql::ReadTransaction snapshot(c);
    require_run(c, run_id);
    sql::Stmt& s = c.stmt(
        "SELECT run_id, relation, source_run_id FROM run_links WHERE run_id = ?1 OR source_run_id = ?1 "
        "ORDER BY run_id, relation, source_run_id");
    s.bind(1, run_id);
    std::vector<RunLink> out;
    while (s.step()) out.push_back({s.i64(0), s.text(1), s.i64(2)});
    return out;
  });
}

}  // namespace ms
