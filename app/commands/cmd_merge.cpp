// `mechscope merge --out FILE SHARD.db...`: merges databases (batch shards) into one. Idempotent:
// runs already in the output are skipped; sources with another schema version are refused.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands/cli.h"
#include "storage/database.h"

namespace ms::app {

void register_merge(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  struct Opts {
    std::string out;
    std::vector<std::string> sources;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("merge", "Merge databases (e.g. batch shards) into one; idempotent");
  cmd->add_option("--out", o->out, "the database to merge into (created when missing)")->required();
  cmd->add_option("sources", o->sources, "databases to merge from")->required();
  cmd->add_flag("--json", o->json, "print what was merged as JSON");
  cmds.emplace_back(cmd, [o]() {
    // Each source goes in with its own transaction: a refused source leaves the output as the
    // sources before it made it, and running the same merge again is safe.
    std::unique_ptr<Database> db = open_database(o->out, false);
    nlohmann::json j = nlohmann::json::array();
    MergeStats total;
    for (const auto& s : o->sources) {
      Result<MergeStats> st = db->merge_from(s);
      if (!st) throw InputError(st.error().message, st.error().code);
      j.push_back({{"source", s}, {"added", st->runs_added}, {"present", st->runs_present},
                   {"not_done", st->runs_not_done}, {"models_added", st->models_added}});
      total.runs_added += st->runs_added;
      total.runs_present += st->runs_present;
      total.runs_not_done += st->runs_not_done;
      if (!o->json)
        std::printf("%s: %lld runs added, %lld already present, %lld not finished (skipped)\n", s.c_str(),
                    static_cast<long long>(st->runs_added), static_cast<long long>(st->runs_present),
                    static_cast<long long>(st->runs_not_done));
    }
    if (o->json) {
      std::cout << nlohmann::json({{"out", o->out}, {"sources", j}, {"added", total.runs_added},
                                   {"present", total.runs_present}}).dump() << "\n";
    } else {
      std::printf("merged into %s: %lld runs added, %lld already present\n", o->out.c_str(),
                  static_cast<long long>(total.runs_added), static_cast<long long>(total.runs_present));
    }
    return 0;
  });
}

}  // namespace ms::app
