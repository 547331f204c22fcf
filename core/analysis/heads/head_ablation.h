// Zero-ablation of attention heads: the head's slice of blocks.L.attn.hook_z set to 0, which
// removes its output z_h W_O^h from the residual stream (the bias b_O stays). Used by the
// workbench's ablate action and the trained zoo's measurements.
#pragma once

#include <vector>

#include "core/base/head_ref.h"
#include "core/model/model.h"

namespace ms {

// Adds one hook per layer with ablated heads to hooks (hooks/activation_cache.h zero_ablate_hook).
// A head outside the model is an InputError "ablate: no head L.H".
void add_head_ablation(HookRegistry& hooks, const ModelConfig& c, const std::vector<HeadRef>& heads);

}  // namespace ms
