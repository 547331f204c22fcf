// Analyses the workbench launches as background tasks, each stored as a run in the database (the
// task opens its own connection). The Analyses window and `mechscope gui --launch` call these.
#pragma once

#include <string>

namespace ms::views {

class Workbench;

struct SinksParams {
  double epsilon = 0.3;           // sink when alpha_0 > epsilon
  double hidden_threshold = 0.1;  // hidden sink when alpha_k > this (absolute)
  std::string prompts_file;       // "" : the workbench's current prompt
};

// Attention sinks (core/sinks.h) on the current prompt or a prompts file; errors before the start
// go to the workbench's popup, errors during the run mark the task failed (and the run failed).
void launch_sinks(Workbench& wb, const SinksParams& params);

}  // namespace ms::views
