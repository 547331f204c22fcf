// Activation cache and the stock hook actions: cache (read), replace (patch from another run),
// ablate (zero, mean, resample), add (steering), and gradient capture.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hooks/hook_registry.h"

namespace ms {

// Activations (or gradients) by hook name.
class ActivationCache {
 public:
  bool contains(const std::string& name) const { return m_acts.count(name) != 0; }
  // Throws std::out_of_range naming the missing hook.
  const at::Tensor& at(const std::string& name) const;
  const at::Tensor& operator[](const std::string& name) const { return at(name); }
  void set(const std::string& name, at::Tensor t) { m_acts[name] = std::move(t); }
  std::vector<std::string> names() const;
  size_t size() const { return m_acts.size(); }
  void clear() { m_acts.clear(); }
  const std::map<std::string, at::Tensor>& items() const { return m_acts; }

 private:
  std::map<std::string, at::Tensor> m_acts;
};

// Which positions and heads a hook action touches; empty means all.
struct Selection {
  std::vector<int64_t> positions;  // absolute positions (a KV-cached run sees only its new ones)
  std::vector<int64_t> heads;      // for hooks with a head axis (q, k, v, z, result, pattern, ...)
};

// Stores each activation (detached) in the cache. With append_positions, a KV-cached run's
// successive calls are concatenated along the position axis instead of replacing each other.
ForwardHook cache_hook(ActivationCache& cache, bool append_positions = false);
// Stores d metric / d activation in the cache (used for attribution).
BackwardHook cache_grad_hook(ActivationCache& cache);

// Replaces the selected part of the activation with the same part of source's activation of the
// same name (activation patching). Source shapes must match on the batch and selected axes.
ForwardHook patch_hook(const ActivationCache& source, Selection sel = {});
// Sets the selected part to zero.
ForwardHook zero_ablate_hook(Selection sel = {});
// Sets the selected part to the mean over the batch of the reference cache's activation
// (mean ablation over a reference set).
ForwardHook mean_ablate_hook(const ActivationCache& reference, Selection sel = {});
// Sets the selected part to that of a randomly chosen other example of the reference cache
// (resample ablation), reproducible by seed.
ForwardHook resample_ablate_hook(const ActivationCache& reference, uint64_t seed, Selection sel = {});
// Adds coeff * vector (shape [d] or broadcastable to the activation) at the selected positions
// (activation steering).
ForwardHook add_vector_hook(at::Tensor vector, double coeff = 1.0, Selection sel = {});

}  // namespace ms
