// Constructed models: small GPT-2-layout transformers whose weights are set by hand so that what
// every head does is known exactly (first-token and hidden attention sinks, massive activations,
// copying). They are the ground truth the analyses are tested against; see docs/zoo-constructed.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/model/model.h"
#include "core/base/result.h"

namespace ms {

// The vocabulary every constructed model shares: 64 ids without a tokenizer.
constexpr int64_t kZooVocab = 64;
constexpr int32_t kZooBos = 0;    // "<bos>"
constexpr int32_t kZooDelim = 1;  // "<delim>", the delimiter of the sink and massive models
constexpr int32_t kZooFirstOrdinary = 2;  // ids 2..63 are ordinary tokens "t2".."t63"

// A constructed model in memory: its config, canonical weights, and the zoo.json object that says
// which layer/head does what, the valid prompt lengths, the prompts to check with and how the
// weights were built.
struct ConstructedModel {
  std::string name;
  ModelConfig config;
  ModelWeights weights;
  nlohmann::json zoo;
};

// "sink", "massive", "copy".
const std::vector<std::string>& constructed_model_names();

// Builds a model by name (kUsage error naming the known ones for anything else). Deterministic:
// the same name always gives the same weights.
Result<ConstructedModel> build_constructed_model(const std::string& name);

// The builders themselves (they cannot fail).
// sink: 2 layers x 4 heads; heads 0.1, 1.0, 1.3 put > 0.9 of their attention on position 0,
// head 1.2 is a hidden sink on the delimiter, the rest attend near-uniformly.
ConstructedModel build_sink_model();
// massive: 3 layers with MLPs; layer 0's MLP writes about +400 / -200 into residual dims 21 / 45 at
// <bos> and <delim>, layer 2's MLP removes them again.
ConstructedModel build_massive_model();
// copy: 2 attention-only layers; head 0.0 is a previous-token head, head 1.0 an induction (copy)
// head that attends to the token after the previous occurrence of the current token and copies it.
ConstructedModel build_copy_model();

// Saves a built model with save_model_hf (config.json, model.safetensors, zoo.json) into out_dir,
// atomically. An existing non-empty folder is refused (kUsage) unless overwrite.
Status save_constructed_model(const ConstructedModel& m, const std::string& out_dir, bool overwrite);
// build_constructed_model + save_constructed_model.
Status construct_model(const std::string& name, const std::string& out_dir, bool overwrite);

}  // namespace ms
