// `mechscope runs show ID` as data: the run's provenance and contents, field by field, in the
// order the CLI prints them. The CLI prints these lines; the Runs window shows the same ones.
#pragma once

#include <string>
#include <vector>

#include "core/base/result.h"
#include "storage/database.h"

namespace ms::report {

struct RunField {
  std::string key;    // "model", "params", "command", "created", "metric", "tensor", ...
  std::string value;  // never empty (empty fields are left out)
};

// A metric's summary over its non-NaN heads (n == 0: none).
struct MetricSummary {
  int n = 0;
  double min = 0, max = 0, mean = 0;
  int argmax_layer = -1, argmax_head = -1;
};
MetricSummary summarize_metric(const HeadScores& h);

// Run `run_id`'s fields; a missing run or an unreadable record is an error naming it.
Result<std::vector<RunField>> run_show_fields(Database& db, int64_t run_id);

}  // namespace ms::report
