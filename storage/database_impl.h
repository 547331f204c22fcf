// Internal to storage/: what a Database holds, and helpers shared by its .cpp files.
#pragma once

#include <string>

#include "storage/database.h"
#include "storage/sqlite_db.h"

namespace ms {

struct Database::Impl {
  Impl(const std::string& path, bool create) : conn(path, false, create) {}
  sql::Connection conn;
  int version = 0;
};

namespace storage_detail {

std::string host_name();
bool process_alive(int64_t pid);  // on this host
// Throws InputError(kUsage) naming the database when the run does not exist.
void require_run(sql::Connection& c, int64_t run_id);
// Inserts the results of run_id (inside the caller's transaction); returns rows written.
int64_t insert_results(sql::Connection& c, int64_t run_id, const RunResults& r,
                       const WriteProgress& progress, int64_t rows_before);
// Feature cards and their examples (feature_records.cpp): inserted inside the caller's
// transaction (returns rows written); copied between databases by merge_from.
int64_t insert_feature_cards(sql::Connection& c, int64_t run_id, const std::vector<FeatureCard>& cards);
void copy_feature_rows(sql::Connection& src, sql::Connection& dst, int64_t from, int64_t to);
// n_layers / n_heads from a model's config JSON (0 when absent).
// The largest layer / head index a stored score may have (the model config's limits): a damaged
// database must not size a table of scores beyond them.
constexpr int64_t kMaxScoreLayers = 1000;
constexpr int64_t kMaxScoreHeads = 4096;
void config_dims(const std::string& config_json, int& n_layers, int& n_heads);

}  // namespace storage_detail
}  // namespace ms
