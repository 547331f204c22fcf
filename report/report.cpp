// write_report: loads the runs, renders the chosen format, refuses to overwrite unless forced,
// and writes every file atomically (temporary file + rename).
#include "report/report.h"
#include "core/base/json_input.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/io/npy.h"
#include "core/base/atomic_file.h"
#include "report/report_common.h"

namespace fs = std::filesystem;

namespace ms {

std::optional<ReportFormat> parse_report_format(const std::string& s) {
  if (s == "html") return ReportFormat::kHtml;
  if (s == "md" || s == "markdown") return ReportFormat::kMarkdown;
  if (s == "csv") return ReportFormat::kCsv;
  if (s == "json") return ReportFormat::kJson;
  if (s == "npy") return ReportFormat::kNpy;
  return std::nullopt;
}

namespace {

using report::Bundle;

std::vector<std::string> write_npy_folder(Database& db, const std::vector<Bundle>& runs, const ReportOptions& o) {
  std::error_code ec;
  if (fs::exists(o.out, ec) && !fs::is_directory(o.out, ec))
    fail_usage(o.out + ": exists and is not a folder; --format npy writes a folder of .npy files");
  if (fs::is_directory(o.out, ec) && !fs::is_empty(o.out, ec) && !o.force)
    fail_usage(o.out + ": folder exists and is not empty (use --force to write into it)");
  fs::create_directories(o.out, ec);
  if (ec) fail_input(o.out + ": cannot create the folder: " + ec.message());
  std::vector<std::string> written;
  std::set<std::string> used;
  nlohmann::json manifest = nlohmann::json::array();
  auto unique = [&](std::string name) {
    std::string base = name;
    for (int i = 2; used.count(name); ++i) name = base + "-" + std::to_string(i);
    used.insert(name);
    return name + ".npy";
  };
  auto put = [&](const std::string& file, const at::Tensor& t) {
    std::string path = (fs::path(o.out) / file).string();
    Status st = write_npy(path, t);
    if (!st) throw InputError(st.error().message, st.error().code);
    written.push_back(path);
  };
  for (const Bundle& b : runs) {
    std::string id = std::to_string(b.run.id);
    for (const HeadScores& h : b.scores) {
      std::string file = unique("run" + id + "_scores_" + report::file_safe(h.metric));
      at::Tensor t = at::empty({h.n_layers, h.n_heads}, at::kDouble);
      std::copy(h.values.begin(), h.values.end(), t.data_ptr<double>());
      put(file, t);
      manifest.push_back({{"file", file}, {"run", b.run.id}, {"kind", "head_scores"}, {"metric", h.metric},
                          {"dtype", "float64"}, {"shape", {h.n_layers, h.n_heads}},
                          {"axes", {"layer", "head"}}, {"missing", "NaN"}});
    }
    for (const TensorInfo& ti : b.tensors) {
      Result<at::Tensor> t = db.get_tensor(b.run.id, ti.name);
      if (!t) throw InputError(t.error().message, t.error().code);
      std::string file = unique("run" + id + "_" + report::file_safe(ti.name));
      put(file, *t);
      nlohmann::json meta = ms::parse_json_or_discarded(ti.meta_json);
      manifest.push_back({{"file", file}, {"run", b.run.id}, {"kind", "tensor"}, {"name", ti.name},
                          {"dtype", ti.dtype == "bfloat16" ? "float32" : ti.dtype}, {"stored_dtype", ti.dtype},
                          {"shape", ti.shape}, {"meta", meta.is_discarded() ? nlohmann::json() : meta}});
    }
  }
  std::string mpath = (fs::path(o.out) / "manifest.json").string();
  write_file_atomic(mpath, manifest.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  written.push_back(mpath);
  return written;
}

}  // namespace

Result<std::vector<std::string>> write_report(Database& db, const std::vector<int64_t>& run_ids,
                                              const ReportOptions& opts) {
  return guard([&]() {
    if (run_ids.empty()) fail_usage("no runs to report; give --run ID[,ID...]");
    if (opts.out.empty()) fail_usage("no output path; give --out PATH");
    if (opts.format != ReportFormat::kNpy) check_can_write(opts.out, opts.force);
    std::vector<Bundle> runs;
    for (int64_t id : run_ids) runs.push_back(report::load_bundle(db, id));
    if (opts.format == ReportFormat::kNpy) return write_npy_folder(db, runs, opts);
    std::vector<report::OutFile> files;
    switch (opts.format) {
      case ReportFormat::kHtml: files.push_back({opts.out, report::render_html(db, runs, opts)}); break;
      case ReportFormat::kCsv: files.push_back({opts.out, report::render_csv(runs)}); break;
      case ReportFormat::kJson: files.push_back({opts.out, report::render_json(runs)}); break;
      case ReportFormat::kMarkdown: {
        fs::path out(opts.out);
        files = report::render_markdown(db, runs, opts, out.stem().string());
        files[0].path = opts.out;
        for (size_t i = 1; i < files.size(); ++i) files[i].path = (out.parent_path() / files[i].path).string();
        break;
      }
      case ReportFormat::kNpy: break;
    }
    for (const auto& f : files) check_can_write(f.path, opts.force);
    // Images first, the document last: a reader never finds a report whose images are missing.
    std::vector<std::string> written;
    for (size_t i = files.size(); i-- > 0;) {
      write_file_atomic(files[i].path, files[i].bytes);
      written.insert(written.begin(), files[i].path);
    }
    return written;
  });
}

}  // namespace ms
