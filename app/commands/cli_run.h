// The command line's side of a stored run, the same for every analysis command: the model, the
// database, Ctrl-C interrupting the run, the progress bar, and a live RunSession whose provenance
// is the command line. A command makes one, calls its run function with session, and prints.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "app/commands/cli.h"
#include "app/commands/progress.h"
#include "app/commands/spec_cli.h"
#include "core/io/prompts.h"
#include "runs/run_control.h"
#include "runs/run_session.h"
#include "storage/database.h"

namespace ms::app {

// The options every analysis command takes: the model's, the spec's parameters and --db; the
// prompt inputs for the commands that take them (add_prompt_inputs).
struct AnalysisOptions : ModelOptions {
  std::string db;
  std::unique_ptr<SpecOptions> spec;
  std::string text, tokens, prompts_file;
};

// --text, --tokens and --prompts (what reads .txt and .jsonl prompt files, core/io/prompts.h).
void add_prompt_inputs(CLI::App& cmd, AnalysisOptions& o, const std::string& text_help);
// The prompts given by one of them; none given: a usage error when required, else no prompts.
std::vector<PromptRecord> read_prompt_inputs(const AnalysisOptions& o, bool required);

// The subcommand NAME (spec.kind) with help, the model options, one option per CLI parameter of
// the spec and --db; the command adds its own input and output options after.
CLI::App* add_analysis_command(CLI::App& app, const AnalysisSpec& spec, const std::string& help, AnalysisOptions& o);

struct CliRun {
  CliRun(const AnalysisOptions& o, const std::string& label)
      : model(load_model(o)), db(open_database(o.db, false)), sig(control), bar(control, label, o.json),
        session(*db, control, {shell_join(command_line())}) {}

  std::unique_ptr<Model> model;
  std::unique_ptr<Database> db;
  RunControl control;
  SignalInterrupt sig;
  ControlBar bar;
  RunSession session;
};

}  // namespace ms::app
