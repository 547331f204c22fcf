// Splicing an SAE into a model's forward pass at its hook point, with SAELens'
// HookedSAETransformer hook names under that point ("blocks.3.hook_resid_pre.hook_sae_acts_post").
//
// How the names reach the hook machinery: the splice is one forward hook on the SAE's point. When
// it runs it resolves the same HookRegistry against a small table of its own six names
// (hook_sae_input, _acts_pre, _acts_post, _recons, _error, _output) and runs the SAE through them,
// so cache_hook, patch_hook, the ablations and add_vector_hook work on single features with the
// registry the caller already has, and a pattern such as "*" caches them too. The model's
// HookPointTable stays as build_hook_points made it: `info --hooks` lists the model's points only.
// Hooks on the point itself still run, in the order they were added relative to the splice.
//
// The error term: with keep_error (the default) the output is x + (recons - clean recons), where
// clean recons is a second pass without hooks; so an untouched splice returns the activation
// itself (bit for bit: when nothing is attached to its names it does not even run) and an ablated
// feature changes the output by exactly its decoder row times its activation. When a hook is on
// hook_sae_error the output is SAELens' recons + hook_sae_error(x - clean recons). Without the
// error term the output is the reconstruction.
//
// A transcoder reads at hook_name and writes at hook_name_out (later in the forward pass): the
// hook at its input point runs the pass and changes nothing, the hook at its output point treats
// the activation there as an SAE's own (error term, hook_sae_error, hook_sae_output). All six
// names sit under the input point, where the pass runs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/features/sae.h"
#include "hooks/hook_registry.h"

namespace ms {

struct SpliceOptions {
  bool keep_error = true;
};

class SaeSplice {
 public:
  // Adds the splice's hook(s) to registry; they are removed when the splice is destroyed. A
  // transcoder without hook_name_out is refused (InputError, kUsage).
  SaeSplice(HookRegistry& registry, std::shared_ptr<const Sae> sae, SpliceOptions opts = {});
  ~SaeSplice();
  SaeSplice(const SaeSplice&) = delete;
  SaeSplice& operator=(const SaeSplice&) = delete;

  // The six hook names under the SAE's point, in SaeStage order.
  const std::vector<std::string>& hook_names() const;
  static std::string hook_name(const std::string& point, SaeStage stage);

 private:
  struct State;
  std::unique_ptr<State> m;
};

// Steering one feature: a hook for the splice's hook_sae_acts_post name that adds `value` to the
// feature's activation at every position (the output then moves by value times the feature's
// decoder row, the error term kept). Throws InputError when the feature is outside the SAE.
ForwardHook steer_feature_hook(int64_t feature, double value);

}  // namespace ms
