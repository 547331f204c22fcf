// Database: where the file lives, opening it (checks, migrations, recovery of runs left
// 'running' by dead processes) and the models table.
#include "storage/database.h"
#include "core/base/json_input.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "storage/database_impl.h"
#include "storage/schema.h"

namespace fs = std::filesystem;

namespace ms {
namespace storage_detail {

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

bool process_alive(int64_t pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
}

void require_run(sql::Connection& c, int64_t run_id) {
  sql::Stmt& s = c.stmt("SELECT 1 FROM runs WHERE id = ?");
  s.bind(1, run_id);
  if (!s.step())
    throw InputError(c.path() + ": there is no run " + std::to_string(run_id) +
                     "; `mechscope runs list` shows the runs it holds", ErrorCode::kUsage);
  s.reset();
}

void config_dims(const std::string& config_json, int& n_layers, int& n_heads) {
  n_layers = n_heads = 0;
  nlohmann::json j = ms::parse_json_or_discarded(config_json);
  if (!j.is_object()) return;
  // Within the model config's limits (1000 layers, 4096 heads), else unknown: a damaged row must
  // not size the score table.
  int64_t v = 0;
  if (j.contains("n_layers") && json_int_in(j["n_layers"], 0, kMaxScoreLayers, &v)) n_layers = static_cast<int>(v);
  if (j.contains("n_heads") && json_int_in(j["n_heads"], 0, kMaxScoreHeads, &v)) n_heads = static_cast<int>(v);
}

}  // namespace storage_detail

using namespace storage_detail;

std::string resolve_db_path(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("MECHSCOPE_DB");
  if (env && *env) return env;
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg && *xdg && fs::path(xdg).is_absolute())  // the XDG spec ignores relative values
    return (fs::path(xdg) / "mechscope" / "mechscope.db").string();
  const char* home = std::getenv("HOME");
  fs::path base = home && *home ? fs::path(home) : fs::current_path();
  return (base / ".local" / "share" / "mechscope" / "mechscope.db").string();
}

std::unique_ptr<Database> open_database(const std::string& db_flag, bool must_exist) {
  OpenOptions o;
  o.create = !must_exist;
  Result<std::unique_ptr<Database>> db = Database::open(resolve_db_path(db_flag), o);
  if (!db) throw InputError(db.error().message, db.error().code);
  return std::move(*db);
}

Database::Database(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Database::~Database() = default;

Result<std::unique_ptr<Database>> Database::open(const std::string& path, const OpenOptions& opts) {
  return guard([&]() -> std::unique_ptr<Database> {
    if (path.empty()) fail_usage("no database path given");
    std::error_code ec;
    if (fs::is_directory(path, ec))
      fail_input(path + ": is a folder, not a database file; pass a file path with --db");
    bool exists = fs::exists(path, ec);
    if (!exists && !opts.create)
      fail_input(path + ": no such database; an analysis creates it on its first run (check --db "
                 "or MECHSCOPE_DB)");
    if (!exists) {
      fs::path parent = fs::path(path).parent_path();
      if (!parent.empty()) fs::create_directories(parent, ec);
      if (ec) fail_input(parent.string() + ": cannot create the database's folder: " + ec.message());
    }
    auto impl = std::make_unique<Impl>(path, opts.create);
    impl->version = schema::prepare(impl->conn, opts.schema_version);
    auto db = std::unique_ptr<Database>(new Database(std::move(impl)));
    if (opts.recover && db->m_impl->version >= 1) {
      // Runs this host started whose process is gone can never finish: mark them failed.
      sql::Connection& c = db->m_impl->conn;
      std::vector<std::pair<int64_t, int64_t>> stale;
      sql::Stmt& s = c.stmt("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?");
      s.bind(1, host_name());
      while (s.step())
        if (!process_alive(s.i64(1))) stale.emplace_back(s.i64(0), s.i64(1));
      s.reset();
      for (auto [id, pid] : stale) {
        sql::Stmt& u = c.stmt(
            "UPDATE runs SET status = 'failed', error = ?, "
            "finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ? AND status = 'running'");
        u.bind(1, "the process writing this run (pid " + std::to_string(pid) +
                      ") ended before it finished; its partial results were discarded");
        u.bind(2, id);
        u.run();
      }
    }
    return db;
  });
}

const std::string& Database::path() const { return m_impl->conn.path(); }
int Database::schema_version() const { return m_impl->version; }

Result<int64_t> Database::register_model(const ModelInfo& info) {
  return guard([&]() -> int64_t {
    if (info.content_hash.empty()) throw std::invalid_argument("register_model: empty content hash");
    sql::Connection& c = m_impl->conn;
    sql::WriteTransaction tx(c);
    sql::Stmt& find = c.stmt("SELECT id FROM models WHERE content_hash = ? AND config_json = ?");
    find.bind(1, info.content_hash).bind(2, info.config_json);
    int64_t id = 0;
    if (find.step()) id = find.i64(0);
    find.reset();
    if (id != 0) {
      sql::Stmt& u = c.stmt("UPDATE models SET path = ? WHERE id = ? AND path <> ?");
      u.bind(1, info.path).bind(2, id).bind(3, info.path).run();
    } else {
      sql::Stmt& ins = c.stmt(
          "INSERT INTO models (path, architecture, config_json, content_hash, n_params) "
          "VALUES (?, ?, ?, ?, ?)");
      ins.bind(1, info.path).bind(2, info.architecture).bind(3, info.config_json);
      ins.bind(4, info.content_hash).bind(5, info.n_params).run();
      id = c.last_insert_id();
    }
    tx.commit();
    return id;
  });
}

namespace {

ModelInfo read_model(const sql::Stmt& s) {
  ModelInfo m;
  m.id = s.i64(0);
  m.path = s.text(1);
  m.architecture = s.text(2);
  m.config_json = s.text(3);
  m.content_hash = s.text(4);
  m.n_params = s.i64(5);
  m.created_at = s.text(6);
  return m;
}

}  // namespace

Result<ModelInfo> Database::get_model(int64_t id) {
  return guard([&]() -> ModelInfo {
    sql::Stmt& s = m_impl->conn.stmt(
        "SELECT id, path, architecture, config_json, content_hash, n_params, created_at "
        "FROM models WHERE id = ?");
    s.bind(1, id);
    if (!s.step())
      throw InputError(path() + ": there is no model " + std::to_string(id), ErrorCode::kUsage);
    ModelInfo m = read_model(s);
    s.reset();
    return m;
  });
}

Result<std::vector<ModelInfo>> Database::list_models() {
  return guard([&]() {
    sql::Stmt& s = m_impl->conn.stmt(
        "SELECT id, path, architecture, config_json, content_hash, n_params, created_at "
        "FROM models ORDER BY id");
    std::vector<ModelInfo> out;
    while (s.step()) out.push_back(read_model(s));
    return out;
  });
}

Result<std::string> Database::integrity_check() {
  return guard([&]() {
    sql::Stmt s(m_impl->conn.handle(), "PRAGMA integrity_check", &m_impl->conn.path(), false);
    std::string out;
    while (s.step()) out += (out.empty() ? "" : "\n") + s.text(0);
    return out;
  });
}

}  // namespace ms
