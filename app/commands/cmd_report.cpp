// `mechscope report --run ID[,ID...] --format html|md|csv|json|npy --out PATH`: exports stored
// runs as a self-contained HTML page, Markdown with PNGs, long-format scores, or .npy tensors.
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/commands/cli.h"
#include "report/report.h"

namespace ms::app {

void register_report(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  struct Opts {
    std::string db, runs, format, out;
    bool force = false, json = false;
    int top_k = 10;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("report", "Export stored runs: html, md, csv, json or npy");
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB, else $XDG_DATA_HOME/mechscope/mechscope.db)");
  cmd->add_option("--run", o->runs, "run ids, comma separated")->required();
  cmd->add_option("--format", o->format, "html, md, csv, json or npy")
      ->required()
      ->check(CLI::IsMember({"html", "md", "markdown", "csv", "json", "npy"}));
  cmd->add_option("--out", o->out, "output file (npy: output folder)")->required();
  cmd->add_flag("--force", o->force, "replace existing output files");
  cmd->add_option("--top-k", o->top_k, "rows in each top-heads table")->capture_default_str();
  cmd->add_flag("--json", o->json, "print the written files as JSON");
  cmds.emplace_back(cmd, [o]() {
    if (o->top_k < 0) fail_usage("--top-k must not be negative");
    std::vector<int64_t> ids;
    std::stringstream ss(o->runs);
    std::string item;
    while (std::getline(ss, item, ',')) {
      try {
        size_t used = 0;
        long long v = std::stoll(item, &used);
        if (used != item.size() || v <= 0) throw std::invalid_argument(item);
        ids.push_back(v);
      } catch (const std::exception&) {
        fail_usage("--run '" + o->runs + "': '" + item + "' is not a run id");
      }
    }
    if (ids.empty()) fail_usage("--run is empty; give run ids like --run 3,4");
    ReportOptions ro;
    ro.format = *parse_report_format(o->format);
    ro.out = o->out;
    ro.force = o->force;
    ro.top_k = o->top_k;
    std::unique_ptr<Database> db = open_database(o->db, true);
    Result<std::vector<std::string>> files = write_report(*db, ids, ro);
    if (!files) throw InputError(files.error().message, files.error().code);
    if (o->json) {
      std::cout << nlohmann::json({{"files", *files}}).dump(2) << "\n";
      return 0;
    }
    std::cout << "wrote " << o->out;
    if (files->size() > 1) std::cout << " (" << files->size() << " files)";
    std::cout << "\n";
    return 0;
  });
}

}  // namespace ms::app
