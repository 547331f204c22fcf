// Reports of stored runs: one self-contained HTML page, Markdown with PNGs beside it, the scores
// as long-format CSV / JSON (run, metric, layer, head, value), and tensors as .npy files.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "storage/database.h"

namespace ms {

enum class ReportFormat { kHtml, kMarkdown, kCsv, kJson, kNpy };
// "html", "md" (or "markdown"), "csv", "json", "npy".
std::optional<ReportFormat> parse_report_format(const std::string& s);

struct ReportOptions {
  ReportFormat format = ReportFormat::kHtml;
  // html / md / csv / json: the file to write (md: its PNGs go beside it, named after it);
  // npy: a folder, created, holding run<ID>_<tensor>.npy, run<ID>_scores_<metric>.npy and
  // manifest.json.
  std::string out;
  bool force = false;  // replace existing files
  int top_k = 10;      // rows of each top-heads table
};

// Writes the report of the runs (in the order given) and returns the files written. Nothing is
// written when any output exists and !force; every file goes through a temporary file and a
// rename, so a failed export leaves no truncated report.
Result<std::vector<std::string>> write_report(Database& db, const std::vector<int64_t>& run_ids,
                                              const ReportOptions& opts);

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(const std::string& s);

}  // namespace ms
