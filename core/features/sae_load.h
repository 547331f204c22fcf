// Loading sparse autoencoders and transcoders from the formats people have on disk, never pickle:
// SAELens folders (cfg.json + sae_weights.safetensors [+ sparsity.safetensors]) and Gemma Scope's
// params.npz, and circuit-tracer's per-layer transcoder folders (layer_{i}.safetensors + config.yaml).
// docs/features.md lists the config fields read and the semantics followed.
#pragma once

#include <memory>
#include <string>

#include "core/base/result.h"
#include "core/features/sae.h"

namespace ms {

class Model;

struct SaeLoadOptions {
  // Overrides the hook point the file names (required for a params.npz, which names none).
  std::string hook_name;
  // For normalize_activations = expected_average_only_in: the factor sqrt(d_in) / E|x| the SAE
  // was trained with. 0: read activation_scaler.json ({"scaling_factor": s}, as SAELens' trainer
  // writes it) from the folder; a file without either is refused.
  double norm_scaling_factor = 0;
  // For a per-layer transcoder folder (circuit-tracer's layer_{i}.safetensors + config.yaml): the
  // layer to load. -1: taken from the file name when the path is a layer_{i}.safetensors file.
  int layer = -1;
};

// path: an SAELens folder, a folder holding params.npz, a .npz file, or a per-layer transcoder
// folder (with opts.layer) or one of its layer_{i}.safetensors files. Weights become float32 on
// the CPU. Errors (kBadInput) name the file and the problem: unknown architecture, a tensor whose
// shape disagrees with cfg.json, a missing tensor, a truncated file.
Result<std::shared_ptr<Sae>> load_sae(const std::string& path, const SaeLoadOptions& opts = {});

// Checks that the SAE fits the model: its hook point exists and the activation there (one token,
// run through the model) has d_in values per position after the SAE's reshape or head selection;
// a transcoder's output point likewise has d_out. Errors (kBadInput) name the SAE's source, the
// hook and both widths.
Status check_sae_fits(const Sae& sae, const Model& model);

}  // namespace ms
