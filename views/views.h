// The factories of the individual windows, one per views/<name>_view.cpp (registry.cpp lists them).
#pragma once

#include <memory>

#include "views/view.h"

namespace ms::views {

std::unique_ptr<View> make_model_view(Workbench& wb);
std::unique_ptr<View> make_prompt_view(Workbench& wb);
std::unique_ptr<View> make_attention_view(Workbench& wb);
std::unique_ptr<View> make_text_view(Workbench& wb);
std::unique_ptr<View> make_head_grid_view(Workbench& wb);
std::unique_ptr<View> make_logit_lens_view(Workbench& wb);
std::unique_ptr<View> make_runs_view(Workbench& wb);
std::unique_ptr<View> make_circuit_view(Workbench& wb);
std::unique_ptr<View> make_analysis_view(Workbench& wb);
std::unique_ptr<View> make_features_view(Workbench& wb);
std::unique_ptr<View> make_contributions_view(Workbench& wb);
std::unique_ptr<View> make_activations_view(Workbench& wb);

}  // namespace ms::views
