// Head zero-ablation hooks (see head_ablation.h).
#include "core/analysis/heads/head_ablation.h"

#include "hooks/activation_cache.h"
#include "hooks/hook_names.h"

namespace ms {

void add_head_ablation(HookRegistry& hooks, const ModelConfig& c, const std::vector<HeadRef>& heads) {
  for (const HeadRef& h : heads)
    if (h.layer < 0 || h.head < 0 || h.layer >= c.n_layers || h.head >= c.n_heads)
      fail_input("ablate: no head " + h.name());
  for (int64_t l = 0; l < c.n_layers; ++l) {
    Selection sel;
    for (const HeadRef& h : heads)
      if (h.layer == l) sel.heads.push_back(h.head);
    if (!sel.heads.empty()) hooks.add_forward(get_act_name("z", static_cast<int>(l)), zero_ablate_hook(sel));
  }
}

}  // namespace ms
