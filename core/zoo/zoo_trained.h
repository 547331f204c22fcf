// The trained zoo: the recipes of `induction`, `retrieval` and `default`, and train_zoo(), which
// builds the tokenizer, trains, measures the expected mechanisms on fresh data and writes the
// model in the Hugging Face layout (config.json, model.safetensors, tokenizer.json, zoo.json)
// atomically: a cancelled or failed run leaves no folder behind.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/model/model.h"
#include "core/base/result.h"
#include "core/zoo/zoo_tasks.h"
#include "core/zoo/zoo_train.h"

namespace ms {

struct ZooRecipe {
  std::string name;    // induction, retrieval, default
  ModelConfig config;
  TrainConfig train;
  uint64_t data_seed = 1;  // the data stream's seed (derived from train.seed by zoo_recipe)
  RepeatTask repeat;       // induction
  NeedleTask needle;       // retrieval
  int32_t bpe_vocab = 1024;          // default: tokenizer vocabulary
  int64_t bpe_corpus_chars = 2000000;  // default: generated text the tokenizer is trained on
  int64_t eval_batch = 64;           // sequences / episodes the measurements use
};

std::vector<std::string> zoo_trained_names();

// The full-size recipe of a trained zoo model with the given seed; kUsage for an unknown name.
Result<ZooRecipe> zoo_recipe(const std::string& name, uint64_t seed = 1);

struct ZooTrainSettings {
  bool overwrite = false;
  std::string command;        // recorded in zoo.json (how to reproduce this model)
  TrainCallbacks callbacks;   // progress and cancel
  // Called between phases ("tokenizer", "training", "measuring", "saving").
  std::function<void(const std::string&)> on_phase;
};

struct ZooTrainResult {
  bool cancelled = false;     // nothing was written
  nlohmann::json zoo;         // the zoo.json written
  TrainOutcome outcome;
};

Result<ZooTrainResult> train_zoo(const ZooRecipe& recipe, const std::string& out_dir,
                                 const ZooTrainSettings& settings = {});

// train_zoo measures a model on data drawn with seed data_seed + this (fresh, never trained on).
constexpr uint64_t kZooMeasureSeedOffset = 7777;

// The mechanism measurements of a zoo model on fresh data from seed (as written into zoo.json
// under "measured"): induction and previous-token scores; for retrieval models the retrieval
// scores and ablations; for the default model also first-token sink heads (alpha_0 > 0.3).
Result<nlohmann::json> measure_zoo_model(const std::string& name, const Model& model, uint64_t seed,
                                         int64_t eval_batch = 64);

}  // namespace ms
