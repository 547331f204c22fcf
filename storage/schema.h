// Internal to storage/: the schema's migrations and the checks made before a file is touched.
#pragma once

#include "storage/sqlite_db.h"

namespace ms::schema {

// 'MSCP' in PRAGMA application_id marks a file as a mechscope database.
constexpr int kApplicationId = 0x4D534350;

// Checks that the file is a mechscope database (or an empty one) no newer than this build,
// refusing without writing anything otherwise; then turns on WAL and foreign keys and migrates
// forward to `target` in one transaction. Returns the version the file is at afterwards.
int prepare(sql::Connection& c, int target);

}  // namespace ms::schema
