// Every workbench window, registered in one place (the shell's View menu and `--view` use it).
#pragma once

#include <memory>
#include <vector>

#include "views/view.h"

namespace ms::views {

// Model, Prompt, Attention, Text, Head grid, Logit lens, Contributions, Activations, Runs, Circuit,
// Features, Analyses, each with its first-use placement and whether it is open at start.
std::vector<std::unique_ptr<View>> make_views(Workbench& wb);

}  // namespace ms::views
