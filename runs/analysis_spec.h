// AnalysisSpec: an analysis' parameters, each declared once (name, type, default, range or
// choices, help, and where it applies), the way llama.cpp's common/arg.cpp declares each option
// once. The CLI options (app/commands/spec_cli.h), the batch job's validation (app/batch), the
// workbench's launch form (views/spec_form.h), the stored parameters and the reproducing command
// are all made from it, so every front end reads, checks and stores a value the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/model/model_config.h"

namespace ms {

// kPath: a file (a job's paths are relative to the job); kChoice: one of `choices`; kHeads: an
// "L.H,..." list; kThreshold: a hidden-sink threshold "abs:X" / "rel:X". kChoice, kHeads and
// kThreshold are strings in JSON and TOML. kIntList: integers, "a,b,c" as text, an array in JSON
// and TOML (lo/hi bound each element; in a batch job a list of such arrays is a grid axis).
enum class ParamType { kInt, kFloat, kString, kBool, kPath, kChoice, kHeads, kThreshold, kIntList };
const char* param_type_name(ParamType t);

// Where a parameter applies (llama.cpp's set_examples).
enum ParamWhere : unsigned {
  kOnCli = 1u,      // a command-line option
  kInBatch = 2u,    // a key of the job's [[analysis]] table
  kInGui = 4u,      // a field of the Analyses window (and a key of `gui --launch`)
  kStored = 8u,     // stored with the run's parameters
  kEverywhere = 15u
};

struct ParamDecl {
  ParamDecl() = default;
  ParamDecl(std::string name_, ParamType type_, nlohmann::json def_, bool grid_, std::string help_,
            unsigned where_ = kEverywhere)
      : name(std::move(name_)), type(type_), def(std::move(def_)), grid(grid_), help(std::move(help_)), where(where_) {}

  std::string name;  // the stored / TOML / --launch key (snake_case)
  ParamType type = ParamType::kFloat;
  nlohmann::json def;  // null: required
  bool grid = false;   // batch: may be a list of values (each value a grid cell)
  std::string help;
  unsigned where = kEverywhere;
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;  // numbers: (lo, hi) instead of [lo, hi]
  std::vector<std::string> choices;       // kChoice
  std::string flag;                       // CLI flag; "" : "--" + name with '-' for '_'. A boolean's
                                          // flag turns its default around ("--no-bos" for bos = true)

  std::string cli_flag() const;
  bool applies(unsigned w) const { return (where & w) != 0; }
};

struct AnalysisSpec {
  std::string kind, summary;
  std::string command;  // the CLI's subcommand words when they are not the kind ("sae features")
  bool uses_prompts = false;  // batch: items are model x prompt set x cell
  std::vector<ParamDecl> params;
  // Checks that involve several parameters or the model ("" when fine, else the message with the
  // parameter it is about in *param). Runs after every parameter passed its own checks.
  std::function<std::string(const nlohmann::json& p, const ModelConfig* c, std::string* param)> check;

  const ParamDecl* find(const std::string& name) const;
};

// A value written as text (a CLI option, a `--launch` key=value, a form field) -> its JSON value
// in the canonical form; "" when fine, else the message.
std::string param_from_text(const ParamDecl& d, const std::string& text, nlohmann::json* out);
// The canonical text of a value (what the CLI would be given; "0.1", "abs:0.1", "true").
std::string param_text(const ParamDecl& d, const nlohmann::json& v);
// One value against its declaration: type, range, choices, format; canonicalised in place
// (kThreshold "abs:0.10" -> "abs:0.1"); "" when fine, else the message.
std::string check_param(const ParamDecl& d, nlohmann::json& v);
// Every parameter of `where` present (defaults filled in, unknown keys refused), checked one by
// one and then by spec.check; canonicalised in place. "" when fine, else the message and *param.
std::string complete_params(const AnalysisSpec& spec, unsigned where, nlohmann::json& p, const ModelConfig* c,
                            std::string* param);
// The parameters stored with the run (the kStored ones).
nlohmann::json stored_params(const AnalysisSpec& spec, const nlohmann::json& p);
// The command line that reproduces a run: "mechscope KIND" + inputs (e.g. {"--model", dir}) +
// every stored CLI parameter, shell-quoted.
std::string reproduce_command(const AnalysisSpec& spec, const nlohmann::json& p,
                              const std::vector<std::pair<std::string, std::string>>& inputs);

// The specs of the analyses: sinks_spec (runs/sinks_run.h), patch_spec (runs/patch_run.h),
// circuit_spec (runs/circuit_run.h).
const AnalysisSpec& sinks_spec();

}  // namespace ms
