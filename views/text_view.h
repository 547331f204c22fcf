// The Text window's token chips, for headless screenshot checks (`--view text`).
#pragma once

#include "views/token_text_widget.h"

namespace ms::views {

class View;
// The widget drawn by view (which must be the Text view; else null).
const TokenTextWidget* text_widget(const View& view);

}  // namespace ms::views
