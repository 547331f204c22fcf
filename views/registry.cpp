// make_views: the one list of workbench windows, in menu order, with where each opens the first
// time and whether it is open at start.
#include "views/registry.h"

#include "views/views.h"

namespace ms::views {

std::vector<std::unique_ptr<View>> make_views(Workbench& wb) {
  // Fractions of the area between the menu bar and the status bar. The windows open at start tile
  // it without overlap: Model and Prompt on the left; Attention over Text in the middle; Head grid,
  // Runs and Analyses on the right. The others open from the View menu (or when something shows in
  // them: a hook point clicked opens Activations) over the middle, where the figures have room.
  const View::Rect kMiddle{0.25f, 0.0f, 0.5f, 0.6f};
  struct Entry {
    std::unique_ptr<View> view;
    View::Rect rect;
    bool open;
  };
  Entry table[] = {
      {make_model_view(wb), {0.0f, 0.0f, 0.25f, 0.5f}, true},
      {make_prompt_view(wb), {0.0f, 0.5f, 0.25f, 0.5f}, true},
      {make_attention_view(wb), kMiddle, true},
      {make_text_view(wb), {0.25f, 0.6f, 0.5f, 0.4f}, true},
      {make_head_grid_view(wb), {0.75f, 0.0f, 0.25f, 0.34f}, true},
      {make_logit_lens_view(wb), kMiddle, false},
      {make_contributions_view(wb), kMiddle, false},
      {make_activations_view(wb), kMiddle, false},
      {make_runs_view(wb), {0.75f, 0.34f, 0.25f, 0.33f}, true},
      {make_circuit_view(wb), kMiddle, false},
      {make_features_view(wb), kMiddle, false},
      {make_analysis_view(wb), {0.75f, 0.67f, 0.25f, 0.33f}, true},
  };
  std::vector<std::unique_ptr<View>> v;
  for (Entry& e : table) {
    e.view->set_default_rect(e.rect);
    e.view->open() = e.open;
    v.push_back(std::move(e.view));
  }
  return v;
}

}  // namespace ms::views
