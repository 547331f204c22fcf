// Writing runs: their life cycle (queued, running, done / failed / cancelled) and their results,
// which always go in inside one transaction together with the flip to 'done'.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "storage/database_impl.h"
#include "storage/tensor_blob.h"

namespace ms {
namespace storage_detail {
namespace {

constexpr int64_t kProgressEvery = 10000;  // rows between WriteProgress calls

void check_results(const RunResults& r) {
  for (const auto& in : r.inputs)
    if (!in.tokens.empty() && in.tokens.size() != in.token_ids.size())
      throw std::invalid_argument("input " + std::to_string(in.index) + ": " + std::to_string(in.tokens.size()) +
                                  " token strings for " + std::to_string(in.token_ids.size()) + " token ids");
  for (const auto& h : r.scores) {
    if (h.metric.empty()) throw std::invalid_argument("head scores with an empty metric name");
    if (h.n_layers < 0 || h.n_heads < 0 ||
        h.values.size() != static_cast<size_t>(h.n_layers) * static_cast<size_t>(h.n_heads))
      throw std::invalid_argument("head scores '" + h.metric + "': " + std::to_string(h.values.size()) +
                                  " values for " + std::to_string(h.n_layers) + " layers x " +
                                  std::to_string(h.n_heads) + " heads");
  }
  for (const auto& c : r.circuits)
    for (const auto& e : c.edges)
      if (e.src < 0 || e.dst < 0 || e.src >= static_cast<int>(c.nodes.size()) ||
          e.dst >= static_cast<int>(c.nodes.size()))
        throw std::invalid_argument("circuit '" + c.name + "': edge " + std::to_string(e.src) + " -> " +
                                    std::to_string(e.dst) + " names a node that does not exist (" +
                                    std::to_string(c.nodes.size()) + " nodes)");
}

void bind_score(sql::Stmt& s, int i, double v) {
  if (std::isnan(v)) s.bind_null(i);
  else s.bind(i, v);
}

}  // namespace

int64_t insert_results(sql::Connection& c, int64_t run_id, const RunResults& r,
                       const WriteProgress& progress, int64_t rows) {
  auto tick = [&](int64_t n) {
    int64_t before = rows;
    rows += n;
    if (progress && (before / kProgressEvery != rows / kProgressEvery || n > 1)) progress(rows);
  };
  for (const auto& in : r.inputs) {
    sql::Stmt& s = c.stmt("INSERT INTO inputs (run_id, idx, text, token_ids, tokens) VALUES (?, ?, ?, ?, ?)");
    s.bind(1, run_id).bind(2, in.index).bind(3, in.text);
    s.bind(4, nlohmann::json(in.token_ids).dump());
    s.bind(5, nlohmann::json(in.tokens).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    s.run();
    tick(1);
  }
  for (const auto& h : r.scores) {
    sql::Stmt& s = c.stmt("INSERT INTO head_scores (run_id, metric, layer, head, value) VALUES (?, ?, ?, ?, ?)");
    s.bind(1, run_id).bind(2, h.metric);  // kept across rewind(): only layer, head, value change
    for (int l = 0; l < h.n_layers; ++l)
      for (int hd = 0; hd < h.n_heads; ++hd) {
        double v = h.at(l, hd);
        if (std::isnan(v)) continue;  // not computed: no row
        s.rewind().bind(3, l).bind(4, hd).bind(5, v);
        s.run();
        tick(1);
      }
  }
  for (const auto& t : r.tensors) {
    if (t.name.empty()) throw std::invalid_argument("a tensor with an empty name");
    blob::EncodedTensor e = blob::encode(t.tensor, t.name);
    sql::Stmt& s = c.stmt(
        "INSERT INTO tensors (run_id, name, dtype, shape, compression, raw_bytes, data, meta_json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, run_id).bind(2, t.name).bind(3, e.dtype).bind(4, blob::shape_json(e.shape));
    s.bind(5, e.compression).bind(6, e.raw_bytes).bind_blob(7, e.data.data(), e.data.size());
    s.bind(8, t.meta_json.empty() ? std::string("{}") : t.meta_json);
    s.run();
    tick(1);
  }
  for (const auto& circ : r.circuits) {
    sql::Stmt& s = c.stmt("INSERT INTO circuits (run_id, name, meta_json) VALUES (?, ?, ?)");
    s.bind(1, run_id).bind(2, circ.name).bind(3, circ.meta_json.empty() ? std::string("{}") : circ.meta_json);
    s.run();
    int64_t circuit_id = c.last_insert_id();
    for (size_t i = 0; i < circ.nodes.size(); ++i) {
      const CircuitNode& n = circ.nodes[i];
      sql::Stmt& ns = c.stmt(
          "INSERT INTO circuit_nodes (circuit_id, idx, name, kind, layer, head, score) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)");
      ns.bind(1, circuit_id).bind(2, static_cast<int64_t>(i)).bind(3, n.name).bind(4, n.kind);
      ns.bind(5, n.layer).bind(6, n.head);
      bind_score(ns, 7, n.score);
      ns.run();
    }
    for (size_t i = 0; i < circ.edges.size(); ++i) {
      const CircuitEdge& e = circ.edges[i];
      sql::Stmt& es = c.stmt(
          "INSERT INTO circuit_edges (circuit_id, idx, src, dst, score) VALUES (?, ?, ?, ?, ?)");
      es.bind(1, circuit_id).bind(2, static_cast<int64_t>(i)).bind(3, e.src).bind(4, e.dst);
      bind_score(es, 5, e.score);
      es.run();
    }
    tick(static_cast<int64_t>(1 + circ.nodes.size() + circ.edges.size()));
  }
  if (!r.features.empty()) tick(insert_feature_cards(c, run_id, r.features));
  for (const auto& l : r.links) {
    sql::Stmt& s = c.stmt("INSERT OR IGNORE INTO run_links (run_id, relation, source_run_id) VALUES (?, ?, ?)");
    require_run(c, l.source_run_id);
    s.bind(1, run_id).bind(2, l.relation).bind(3, l.source_run_id).run();
    tick(1);
  }
  return rows;
}

}  // namespace storage_detail

using namespace storage_detail;

namespace {

int64_t insert_run(sql::Connection& c, const RunSpec& spec, const char* status) {
  if (spec.kind.empty()) throw std::invalid_argument("a run needs a kind (\"sinks\", \"heads\", ...)");
  sql::Stmt& s = c.stmt(
      "INSERT INTO runs (kind, model_id, params_json, command, label, resume_key, mechscope_version, "
      "status, started_at, finished_at, progress, pid, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
      "CASE WHEN ?8 = 'queued' THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END, "
      "CASE WHEN ?8 = 'done' THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE NULL END, "
      "CASE WHEN ?8 = 'done' THEN 1.0 ELSE 0.0 END, ?, ?)");
  s.bind(1, spec.kind);
  if (spec.model_id > 0) s.bind(2, spec.model_id);
  else s.bind_null(2);
  s.bind(3, spec.params_json.empty() ? std::string("{}") : spec.params_json);
  s.bind(4, spec.command).bind(5, spec.label).bind(6, spec.resume_key);
  s.bind(7, std::string(MECHSCOPE_VERSION)).bind(8, std::string(status));
  s.bind(9, static_cast<int64_t>(::getpid())).bind(10, host_name());
  s.run();
  return c.last_insert_id();
}

// Sets a final status unless the run is already final. Returns false when it was.
bool finalize(sql::Connection& c, int64_t run_id, const char* status, const std::string& error) {
  sql::Stmt& s = c.stmt(
      "UPDATE runs SET status = ?, error = ?, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), "
      "progress = CASE WHEN ?1 = 'done' THEN 1.0 ELSE progress END "
      "WHERE id = ? AND status IN ('queued', 'running')");
  s.bind(1, std::string(status)).bind_text_or_null(2, error).bind(3, run_id).run();
  return c.changes() == 1;
}

std::string current_status(sql::Connection& c, int64_t run_id) {
  sql::Stmt& s = c.stmt("SELECT status FROM runs WHERE id = ?");
  s.bind(1, run_id);
  std::string st = s.step() ? s.text(0) : "";
  s.reset();
  return st;
}

}  // namespace

Result<int64_t> Database::begin_run(const RunSpec& spec) {
  return guard([&]() { return insert_run(m_impl->conn, spec, "running"); });
}

Result<int64_t> Database::queue_run(const RunSpec& spec) {
  return guard([&]() { return insert_run(m_impl->conn, spec, "queued"); });
}

Status Database::start_run(int64_t run_id) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    require_run(c, run_id);
    sql::Stmt& s = c.stmt(
        "UPDATE runs SET status = 'running', started_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), "
        "pid = ?, host = ? WHERE id = ? AND status = 'queued'");
    s.bind(1, static_cast<int64_t>(::getpid())).bind(2, host_name()).bind(3, run_id).run();
    if (c.changes() != 1)
      throw std::invalid_argument("run " + std::to_string(run_id) + " is " + current_status(c, run_id) +
                                  ", not queued; only a queued run can start");
  });
}

Status Database::set_progress(int64_t run_id, double progress) {
  return guard([&]() {
    sql::Stmt& s = m_impl->conn.stmt("UPDATE runs SET progress = ? WHERE id = ? AND status = 'running'");
    s.bind(1, std::isfinite(progress) ? std::min(1.0, std::max(0.0, progress)) : 0.0).bind(2, run_id).run();
  });
}

Status Database::finish_run(int64_t run_id, const RunResults& results, const WriteProgress& progress) {
  return guard([&]() {
    check_results(results);
    sql::Connection& c = m_impl->conn;
    sql::WriteTransaction tx(c);
    require_run(c, run_id);
    std::string st = current_status(c, run_id);
    if (st != "running" && st != "queued")
      throw std::invalid_argument("run " + std::to_string(run_id) + " is already " + st +
                                  "; its results cannot be written again");
    if (progress) progress(0);
    insert_results(c, run_id, results, progress, 0);
    finalize(c, run_id, "done", "");
    tx.commit();
  });
}

Status Database::fail_run(int64_t run_id, const std::string& error) {
  return guard([&]() {
    require_run(m_impl->conn, run_id);
    finalize(m_impl->conn, run_id, "failed", error.empty() ? std::string("failed") : error);
  });
}

Status Database::cancel_run(int64_t run_id, const std::string& reason) {
  return guard([&]() {
    require_run(m_impl->conn, run_id);
    finalize(m_impl->conn, run_id, "cancelled", reason);
  });
}

Result<int64_t> Database::store_run(const RunSpec& spec, const RunResults& results,
                                    const WriteProgress& progress) {
  return guard([&]() {
    check_results(results);
    sql::Connection& c = m_impl->conn;
    sql::WriteTransaction tx(c);
    int64_t id = insert_run(c, spec, "done");
    if (progress) progress(0);
    insert_results(c, id, results, progress, 0);
    tx.commit();
    return id;
  });
}

Result<std::vector<int64_t>> Database::store_runs(const std::vector<RunWrite>& runs,
                                                  const WriteProgress& progress) {
  return guard([&]() {
    for (const auto& r : runs) check_results(r.results);
    sql::Connection& c = m_impl->conn;
    sql::WriteTransaction tx(c);
    if (progress) progress(0);
    std::vector<int64_t> ids;
    int64_t rows = 0;
    for (const auto& r : runs) {
      ids.push_back(insert_run(c, r.spec, "done"));
      RunResults res = r.results;  // tensors are shared, not copied
      for (RunLink& l : res.links) {
        if (l.source_run_id >= 0) continue;
        const size_t k = static_cast<size_t>(-l.source_run_id);
        if (k > ids.size() - 1) throw std::invalid_argument("a run links to run " + std::to_string(k) + " of its write, not stored before it");
        l.source_run_id = ids[k - 1];
      }
      rows = insert_results(c, ids.back(), res, progress, rows);
    }
    tx.commit();
    return ids;
  });
}

Status Database::add_link(const RunLink& link) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    if (link.relation.empty()) throw std::invalid_argument("a run link needs a relation name");
    sql::WriteTransaction tx(c);
    require_run(c, link.run_id);
    require_run(c, link.source_run_id);
    sql::Stmt& s = c.stmt("INSERT OR IGNORE INTO run_links (run_id, relation, source_run_id) VALUES (?, ?, ?)");
    s.bind(1, link.run_id).bind(2, link.relation).bind(3, link.source_run_id).run();
    tx.commit();
  });
}

Status Database::delete_run(int64_t run_id) {
  return guard([&]() {
    sql::Connection& c = m_impl->conn;
    sql::WriteTransaction tx(c);
    require_run(c, run_id);
    sql::Stmt& s = c.stmt("SELECT status, pid, host FROM runs WHERE id = ?");
    s.bind(1, run_id);
    s.step();
    bool live = s.text(0) == "running" && s.text(2) == host_name() && process_alive(s.i64(1));
    int64_t pid = s.i64(1);
    s.reset();
    if (live)
      throw InputError(path() + ": run " + std::to_string(run_id) + " is still being written by process " +
                           std::to_string(pid) + "; stop that process first",
                       ErrorCode::kUsage);
    c.stmt("DELETE FROM runs WHERE id = ?").bind(1, run_id).run();
    tx.commit();
  });
}

}  // namespace ms
