// SQLite wrapper: statements, connection setup (busy timeout) and error mapping. A corrupt or
// non-SQLite file becomes an InputError (exit 3) that names the file and says what to do.
#include "storage/sqlite_db.h"

#include <stdexcept>

#include "core/base/result.h"

namespace ms::sql {

namespace {
constexpr int kBusyTimeoutMs = 30000;
}

void fail(sqlite3* db, int rc, const std::string& path, const std::string& what) {
  std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int primary = rc & 0xff;
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
    throw InputError(path + ": not a valid mechscope database (" + detail + " while " + what +
                     "); pass another file with --db, or restore this one from a backup");
  if (primary == SQLITE_CANTOPEN)
    throw InputError(path + ": cannot open the database (" + detail +
                     "); check that the folder exists and is writable, or pass another --db");
  if (primary == SQLITE_READONLY || primary == SQLITE_PERM || primary == SQLITE_AUTH)
    throw InputError(path + ": the database is read-only (" + detail + " while " + what +
                     "); check the file's permissions or pass another --db");
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    throw std::runtime_error(path + ": the database stayed locked by another process for " +
                             std::to_string(kBusyTimeoutMs / 1000) + " s while " + what +
                             "; try again when the other mechscope process is done");
  if (primary == SQLITE_FULL)
    throw std::runtime_error(path + ": the disk is full while " + what + "; free space and retry");
  throw std::runtime_error(path + ": SQLite error while " + what + ": " + detail);
}

Stmt::Stmt(sqlite3* db, const char* sql, const std::string* path, bool persistent)
    : m_db(db), m_path(path) {
  int rc = sqlite3_prepare_v3(db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, &m_stmt, nullptr);
  if (rc != SQLITE_OK) fail(db, rc, *path, std::string("preparing: ") + sql);
}

Stmt::~Stmt() { sqlite3_finalize(m_stmt); }

Stmt& Stmt::reset() {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
  return *this;
}

Stmt& Stmt::rewind() {
  sqlite3_reset(m_stmt);
  return *this;
}

Stmt& Stmt::bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(m_stmt, i, v);
  if (rc != SQLITE_OK) fail(m_db, rc, *m_path, "binding a value");
  return *this;
}

Stmt& Stmt::bind(int i, double v) {
  int rc = sqlite3_bind_double(m_stmt, i, v);
  if (rc != SQLITE_OK) fail(m_db, rc, *m_path, "binding a value");
  return *this;
}

Stmt& Stmt::bind(int i, const std::string& v) {
  int rc = sqlite3_bind_text64(m_stmt, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) fail(m_db, rc, *m_path, "binding a value");
  return *this;
}

Stmt& Stmt::bind_blob(int i, const void* data, size_t n) {
  // A zero-length blob must still be a blob, not NULL: give SQLite a valid pointer.
  static const char kEmpty = 0;
  int rc = sqlite3_bind_blob64(m_stmt, i, n ? data : &kEmpty, n, SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) fail(m_db, rc, *m_path, "binding a value");
  return *this;
}

Stmt& Stmt::bind_null(int i) {
  int rc = sqlite3_bind_null(m_stmt, i);
  if (rc != SQLITE_OK) fail(m_db, rc, *m_path, "binding a value");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string sql = sqlite3_sql(m_stmt);
  sqlite3_reset(m_stmt);
  fail(m_db, rc, *m_path, "running: " + sql);
}

void Stmt::run() {
  while (step()) {
  }
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(m_stmt, col) == SQLITE_NULL; }
int64_t Stmt::i64(int col) const { return sqlite3_column_int64(m_stmt, col); }
double Stmt::f64(int col) const { return sqlite3_column_double(m_stmt, col); }

std::string Stmt::text(int col) const {
  const unsigned char* p = sqlite3_column_text(m_stmt, col);
  int n = sqlite3_column_bytes(m_stmt, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

std::string Stmt::blob(int col) const {
  const void* p = sqlite3_column_blob(m_stmt, col);
  int n = sqlite3_column_bytes(m_stmt, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

Connection::Connection(const std::string& path, bool read_only, bool create) : m_path(path) {
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (create && !read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;  // one connection per thread
  int rc = sqlite3_open_v2(path.c_str(), &m_db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = m_db ? sqlite3_errmsg(m_db) : sqlite3_errstr(rc);
    sqlite3_close_v2(m_db);
    m_db = nullptr;
    if ((rc & 0xff) == SQLITE_CANTOPEN)
      throw InputError(path + ": cannot open the database (" + msg +
                       "); check the path and permissions, or pass another --db");
    throw InputError(path + ": cannot open the database: " + msg);
  }
  sqlite3_extended_result_codes(m_db, 1);
  sqlite3_busy_timeout(m_db, kBusyTimeoutMs);
}

Connection::~Connection() {
  m_cache.clear();  // finalize statements before closing
  if (m_db) sqlite3_close_v2(m_db);
}

Stmt& Connection::stmt(const char* sql) {
  auto it = m_cache.find(sql);
  if (it == m_cache.end())
    it = m_cache.emplace(sql, std::make_unique<Stmt>(m_db, sql, &m_path, true)).first;
  return it->second->reset();
}

void Connection::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(m_db, sql, nullptr, nullptr, &err);
  sqlite3_free(err);  // sqlite3_errmsg() still holds the message
  if (rc != SQLITE_OK) fail(m_db, rc, m_path, std::string("running: ") + sql);
}

int64_t Connection::scalar_i64(const char* sql) {
  Stmt s(m_db, sql, &m_path, false);
  return s.step() ? s.i64(0) : 0;
}

int64_t Connection::last_insert_id() const { return sqlite3_last_insert_rowid(m_db); }
int Connection::changes() const { return sqlite3_changes(m_db); }

void Connection::reset_all() {
  for (auto& [sql, s] : m_cache) s->reset();
}

WriteTransaction::WriteTransaction(Connection& c) : m_c(c) { m_c.exec("BEGIN IMMEDIATE"); }

WriteTransaction::~WriteTransaction() {
  if (m_done) return;
  m_c.reset_all();
  sqlite3_exec(m_c.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void WriteTransaction::commit() {
  m_c.reset_all();
  m_c.exec("COMMIT");
  m_done = true;
}

ReadTransaction::ReadTransaction(Connection& c) : m_c(c) { m_c.exec("BEGIN DEFERRED"); }
ReadTransaction::~ReadTransaction() {
  m_c.reset_all();
  sqlite3_exec(m_c.handle(), "COMMIT", nullptr, nullptr, nullptr);
}

}  // namespace ms::sql
