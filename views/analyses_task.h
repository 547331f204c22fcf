// The workbench side of a stored run: a background task with its own database connection and a
// live RunSession on the task's RunControl, so the task row shows the run's progress and its
// cancel button cancels the run. Used by every launch_* of views/analyses.h.
#pragma once

#include <functional>
#include <string>

#include "runs/run_session.h"
#include "views/workbench.h"

namespace ms::views {

// Starts fn(session) on a task; fn runs the analysis through a run function of runs/ and returns
// the task's final status ("stored as run N", "cancelled"). unit names what progress counts.
void start_run_task(Workbench& wb, const std::string& name, const std::string& unit, const std::string& command,
                    std::function<std::string(RunSession&)> fn);

}  // namespace ms::views
