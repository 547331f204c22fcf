// Shared pieces of the mechscope command line: common options, model loading, output helpers.
// Each subcommand lives in its own app/cmd_*.cpp and registers itself through these functions.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/model/model.h"
#include "core/base/result.h"

namespace ms::app {

// Options every model command takes.
struct ModelOptions {
  std::string model;
  std::string device = "cpu";
  std::string dtype = "f32";
  int threads = 0;  // 0: all cores
  bool json = false;
};
void add_model_options(CLI::App& cmd, ModelOptions& o, bool model_required = true);

// Loads the model named by o (applies --threads first); throws InputError on failure.
std::unique_ptr<Model> load_model(const ModelOptions& o);
// Token ids from --text (through the model's tokenizer) or --tokens "1,2,3".
// No tokens at all is a usage error unless allow_empty (tokenize: an empty text is valid input).
std::vector<int32_t> input_ids(const Model& m, const std::string& text, const std::string& tokens,
                               bool add_special = true, bool allow_empty = false);
// "1,2,3" -> ids; throws a usage error naming the bad item.
std::vector<int32_t> parse_ids(const std::string& s);
// A token for display: the tokenizer's text, else "<id>".
std::string token_label(const Model& m, int32_t id);

// A subcommand's body; returns the exit code. Errors are thrown (InputError) and turned into
// exit codes by main.
using Command = std::function<int()>;

void register_info(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_tokenize(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_forward(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_generate(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_zoo(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_runs(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_compare(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_report(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_sinks(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_retrieval(CLI::App&, std::vector<std::pair<CLI::App*, Command>>&);
void register_patch(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_circuit(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_heads(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_batch(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_merge(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
// `sae info|encode|splice` (app/commands/cmd_sae.cpp).
void register_sae(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);
// `sae features` (app/commands/cmd_sae_features.cpp), under the `sae` command.
void register_sae_features(CLI::App& sae, std::vector<std::pair<CLI::App*, Command>>& cmds);
// `sae heads` (app/commands/cmd_sae_heads.cpp), under the `sae` command.
void register_sae_heads(CLI::App& sae, std::vector<std::pair<CLI::App*, Command>>& cmds);
// The workbench (app/commands/cmd_gui.cpp), built with MECHSCOPE_BUILD_GUI.
void register_gui(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds);

// The command line this process was started with (for the "command that reproduces the run").
const std::vector<std::string>& command_line();
void set_command_line(int argc, char** argv);
// `zoo` subcommands, each in its own file (app/cmd_zoo_*.cpp).
void register_zoo_train(CLI::App& zoo, std::vector<std::pair<CLI::App*, Command>>& cmds);
void register_zoo_construct(CLI::App& zoo, std::vector<std::pair<CLI::App*, Command>>& cmds);

}  // namespace ms::app
