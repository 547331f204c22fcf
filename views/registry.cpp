// make_views: the one list of workbench windows, in menu order.
#include "views/registry.h"

#include "views/views.h"

namespace ms::views {

std::vector<std::unique_ptr<View>> make_views(Workbench& wb) {
  std::vector<std::unique_ptr<View>> v;
  v.push_back(make_model_view(wb));
  v.push_back(make_prompt_view(wb));
  v.push_back(make_attention_view(wb));
  v.push_back(make_text_view(wb));
  v.push_back(make_head_grid_view(wb));
  v.push_back(make_logit_lens_view(wb));
  v.push_back(make_contributions_view(wb));
  v.push_back(make_activations_view(wb));
  v.push_back(make_runs_view(wb));
  v.push_back(make_circuit_view(wb));
  v.push_back(make_features_view(wb));
  v.push_back(make_analysis_view(wb));
  return v;
}

}  // namespace ms::views
