// The mechscope executable: parses the command line and hands over to a subcommand. Exit codes:
// 0 success, 2 usage error, 3 bad input file, 1 anything else.
#include <cstdio>
#include <iostream>

#include "app/commands/cli.h"
#include "app_features.h"
#include "core/base/malloc_reuse.h"

int main(int argc, char** argv) {
  ms::keep_freed_memory_for_reuse();  // large per-batch tensors reuse heap pages (core/base/malloc_reuse.h)
  ms::huge_pages_for_large_tensors();  // large tensors on transparent huge pages (core/base/malloc_reuse.h)
  CLI::App app{"mechscope: a workbench for mechanistic interpretability of transformer language models"};
  app.set_version_flag("--version", std::string("mechscope ") + MECHSCOPE_VERSION);
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, ms::app::Command>> cmds;
  ms::app::register_info(app, cmds);
  ms::app::register_tokenize(app, cmds);
  ms::app::register_forward(app, cmds);
  ms::app::register_generate(app, cmds);
  ms::app::register_zoo(app, cmds);
  ms::app::register_runs(app, cmds);
  ms::app::register_compare(app, cmds);
  ms::app::register_report(app, cmds);
  ms::app::register_sinks(app, cmds);
  ms::app::register_retrieval(app, cmds);
  ms::app::register_patch(app, cmds);
  ms::app::register_circuit(app, cmds);
  ms::app::register_heads(app, cmds);
  ms::app::register_batch(app, cmds);
  ms::app::register_merge(app, cmds);
  ms::app::register_sae(app, cmds);
#if MECHSCOPE_WITH_GUI
  ms::app::register_gui(app, cmds);
#endif
  ms::app::set_command_line(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "mechscope: " << e.what() << "\nRun with --help for usage.\n";
    return 2;
  }
  for (auto& [sub, run] : cmds) {
    if (!sub->parsed()) continue;
    ms::Result<int> r = ms::guard(run);
    if (!r) {
      std::cerr << "mechscope: error: " << r.error().message << "\n";
      return static_cast<int>(r.error().code);
    }
    return *r;
  }
  return 2;
}
