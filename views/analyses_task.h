// The workbench side of a stored run: a background task with its own database connection and a
// live RunSession on the task's RunControl, so the task row shows the run's progress and its
// cancel button cancels the run. Used by every launch_* of views/analyses.h.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/io/prompts.h"
#include "runs/analysis_spec.h"

#include "runs/run_session.h"
#include "views/workbench.h"

namespace ms::views {

// Starts fn(session) on a task; fn runs the analysis through a run function of runs/ and returns
// the task's final status ("stored as run N", "cancelled"). unit names what progress counts.
void start_run_task(Workbench& wb, const std::string& name, const std::string& unit, const std::string& command,
                    std::function<std::string(RunSession&)> fn);

// The parameters completed and checked against the spec and the open model (kInGui); false, with
// the error shown in the workbench's popup under title, when there is no model or they do not pass.
bool launch_ready(Workbench& wb, const AnalysisSpec& spec, const char* title, nlohmann::json& params);

// The prompts a launch runs on: the prompts file's, or the workbench's current prompt (its text;
// for a model without a tokenizer, the token ids typed into it). Appends to *inputs the CLI
// options that name them (--prompts, --text or --tokens) for the reproducing command. Throws
// InputError on a bad file.
std::vector<PromptRecord> launch_records(Workbench& wb, const Model& model, const std::string& prompts_file,
                                         std::vector<std::pair<std::string, std::string>>* inputs);

// launch_ready, then launch_records (the prompts file's or the current prompt) and the reproducing
// command; false, with the error shown under title, when the parameters or the prompts are bad.
bool prompts_launch_ready(Workbench& wb, const AnalysisSpec& spec, const char* title, const std::string& prompts_file,
                          nlohmann::json& params, std::vector<PromptRecord>* records, std::string* command);

}  // namespace ms::views
