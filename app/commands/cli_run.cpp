// add_analysis_command: the options every analysis command shares.
#include "app/commands/cli_run.h"

namespace ms::app {

CLI::App* add_analysis_command(CLI::App& app, const AnalysisSpec& spec, const std::string& help, AnalysisOptions& o) {
  CLI::App* cmd = app.add_subcommand(spec.kind, help);
  add_model_options(*cmd, o);
  o.spec = std::make_unique<SpecOptions>(*cmd, spec);
  cmd->add_option("--db", o.db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  return cmd;
}

void add_prompt_inputs(CLI::App& cmd, AnalysisOptions& o, const std::string& text_help) {
  cmd.add_option("--text,-t", o.text, text_help);
  cmd.add_option("--tokens", o.tokens, "one prompt as token ids, comma separated");
  cmd.add_option("--prompts", o.prompts_file,
                 "prompts: .txt (one per line) or .jsonl ({\"text\" or \"tokens\", \"continuation\", \"choices\", \"answer\"})");
}

std::vector<PromptRecord> read_prompt_inputs(const AnalysisOptions& o, bool required) {
  const int given = (!o.text.empty()) + (!o.tokens.empty()) + (!o.prompts_file.empty());
  if (given > 1 || (required && given == 0))
    fail_usage("give " + std::string(required ? "one" : "at most one") + " of --text, --tokens or --prompts");
  if (!o.prompts_file.empty()) {
    Result<std::vector<PromptRecord>> r = read_prompts(o.prompts_file);
    if (!r) throw InputError(r.error().message, r.error().code);
    return std::move(*r);
  }
  if (given == 0) return {};
  PromptRecord r;
  r.text = o.text;
  if (!o.tokens.empty()) r.tokens = parse_ids(o.tokens);
  return {r};
}

}  // namespace ms::app
