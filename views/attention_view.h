// The Attention window's heatmap layout, for headless screenshot checks (`--view attention`).
#pragma once

#include "views/heatmap_widget.h"

namespace ms::views {

class View;
// The layout of the attention heatmap drawn last frame by view (which must be the Attention view).
const HeatmapLayout* attention_layout(const View& view);

}  // namespace ms::views
