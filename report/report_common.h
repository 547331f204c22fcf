// Internal to storage/: what every report format needs: a run's contents loaded at once, and
// the shared pieces (figures, top-k, file names, number formatting).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/base/colormap.h"
#include "storage/database.h"
#include "report/report.h"

namespace ms::report {

struct Bundle {
  RunInfo run;
  std::optional<ModelInfo> model;
  std::vector<InputRecord> inputs;
  std::vector<HeadScores> scores;
  std::vector<TensorInfo> tensors;
  std::vector<Circuit> circuits;
  std::vector<RunLink> links;
  std::vector<FeatureCard> features;  // sae-features runs
};
// Throws InputError when a run is missing or unreadable.
Bundle load_bundle(Database& db, int64_t run_id);

// A file written by a report: a name relative to the output and its bytes.
struct OutFile {
  std::string path;
  std::string bytes;
};

// "%.4g"-style for tables; "%.17g" (round-trips) for data files.
std::string fmt(double v);
std::string fmt_exact(double v);
// 1234567 -> "1.23M"
std::string fmt_count(int64_t n);
// Letters, digits, '.', '-', '_' kept; anything else becomes '_'.
std::string file_safe(const std::string& s);

// Signed metrics (attributions, logit differences) use the diverging map.
bool is_signed_metric(const HeadScores& s);
ColorScale scale_for(const HeadScores& s);
// The layer x head heatmap (rows = layers, top to bottom) with cells big enough to read.
RgbImage scores_image(const HeadScores& s, const ColorScale& scale, int& cell);

struct TopHead {
  int layer, head;
  double value;
};
// The k heads with the largest value (largest |value| for signed metrics).
std::vector<TopHead> top_heads(const HeadScores& s, int k);

// A 2-D view of a stored tensor for a heatmap: [rows, cols] as doubles, or nullopt when the
// tensor is not 2-D after dropping leading size-1 dimensions. Sides longer than kMaxSide are
// averaged over blocks of `step` rows / columns so that images stay small.
constexpr int kMaxSide = 256;
struct Matrix {
  int rows = 0, cols = 0;
  int row_step = 1, col_step = 1;  // > 1: each cell is the mean of a block of the tensor
  std::vector<double> values;
};
std::optional<Matrix> load_matrix(Database& db, int64_t run_id, const TensorInfo& t);
// Fields from a tensor's meta JSON.
std::string meta_string(const std::string& meta_json, const char* key);
int meta_int(const std::string& meta_json, const char* key, int fallback);

std::string render_html(Database& db, const std::vector<Bundle>& runs, const ReportOptions& opts);
// Markdown text (first) and its PNGs, named <stem>-run<ID>-<what>.png.
std::vector<OutFile> render_markdown(Database& db, const std::vector<Bundle>& runs, const ReportOptions& opts,
                                     const std::string& stem);
std::string render_csv(const std::vector<Bundle>& runs);
std::string render_json(const std::vector<Bundle>& runs);

// Feature cards (report_features.cpp): at most kMaxCards per run (the ones firing most often).
constexpr size_t kMaxCards = 200;
void features_html(std::string& s, const Bundle& b);
std::string features_markdown(const Bundle& b);
void features_json(std::string& s, bool& first, const Bundle& b);  // long-format rows

}  // namespace ms::report
