// Internal to storage/: a thin RAII layer over the SQLite C API (connection, cached prepared
// statements, transactions) that turns SQLite errors into mechscope errors naming the database.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace ms::sql {

// Throws InputError (corrupt file, not a database, cannot open: exit 3) or runtime_error.
[[noreturn]] void fail(sqlite3* db, int rc, const std::string& path, const std::string& what);

// A prepared statement. SQL is always a constant; values go in through bind(), never by text.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql, const std::string* path, bool persistent);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& reset();   // ready to bind and step again; bindings cleared
  Stmt& rewind();  // ready to step again with the same bindings (change only some)
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind(int i, const std::string& v);
  Stmt& bind_blob(int i, const void* data, size_t n);
  Stmt& bind_null(int i);
  Stmt& bind_text_or_null(int i, const std::string& v) { return v.empty() ? bind_null(i) : bind(i, v); }

  bool step();   // true: a row is ready; false: done
  void run();    // step() to completion of a write
  bool is_null(int col) const;
  int64_t i64(int col) const;
  double f64(int col) const;
  std::string text(int col) const;
  std::string blob(int col) const;

 private:
  sqlite3* m_db;
  sqlite3_stmt* m_stmt = nullptr;
  const std::string* m_path;
};

class Connection {
 public:
  Connection(const std::string& path, bool read_only, bool create);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return m_db; }
  const std::string& path() const { return m_path; }
  // A cached statement for a constant SQL string, reset and ready to bind.
  Stmt& stmt(const char* sql);
  // Runs constant SQL with no parameters (schema, pragmas, BEGIN/COMMIT).
  void exec(const char* sql);
  int64_t scalar_i64(const char* sql);
  int64_t last_insert_id() const;
  int changes() const;
  // Resets every cached statement, releasing any read snapshot one still holds.
  void reset_all();

 private:
  sqlite3* m_db = nullptr;
  std::string m_path;
  std::unordered_map<const char*, std::unique_ptr<Stmt>> m_cache;
};

// BEGIN IMMEDIATE (takes the write lock up front, so the busy timeout applies and no read-to-
// write upgrade can deadlock); rolls back unless commit() was called.
class WriteTransaction {
 public:
  explicit WriteTransaction(Connection& c);
  ~WriteTransaction();
  void commit();

 private:
  Connection& m_c;
  bool m_done = false;
};

// Read transaction: one consistent snapshot for several queries.
class ReadTransaction {
 public:
  explicit ReadTransaction(Connection& c);
  ~ReadTransaction();

 private:
  Connection& m_c;
};

}  // namespace ms::sql
