// Every workbench window, registered in one place (the shell's View menu and `--view` use it).
#pragma once

#include <memory>
#include <vector>

#include "views/view.h"

namespace ms::views {

// Model, Prompt, Attention, Head grid, Logit lens, Runs, Circuit, Analyses.
std::vector<std::unique_ptr<View>> make_views(Workbench& wb);

}  // namespace ms::views
