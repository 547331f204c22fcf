// induction_zoo_dir: the fixture's folder when it holds the model the tests expect, else trained here.
#include "tests/support/zoo_fixture.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/zoo/zoo_trained.h"
#include "tests/support/test_support.h"

namespace ms::test {
namespace {

// Whether dir holds a finished `induction` model of seed 1 trained for kInductionZooSteps steps
// (train_zoo writes the folder atomically, zoo.json with it).
bool is_expected_model(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(fs::path(dir) / "model.safetensors") || !fs::exists(fs::path(dir) / "zoo.json")) return false;
  try {
    const nlohmann::json z = nlohmann::json::parse(read_file(dir + "/zoo.json"));
    return z.at("name") == "induction" && z.at("seed") == 1 && z.at("result").at("steps") == kInductionZooSteps;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::string induction_zoo_dir() {
  static const std::string dir = [] {
    const char* env = std::getenv("MECHSCOPE_TEST_INDUCTION_ZOO");
    if (env && *env && is_expected_model(env)) return std::string(env);
    ZooRecipe r = zoo_recipe("induction", 1).value();
    r.train.steps = kInductionZooSteps;
    const std::string d = temp_dir("induction-zoo") + "/induction";
    ZooTrainSettings s;
    s.command = "test";
    Result<ZooTrainResult> t = train_zoo(r, d, s);
    if (!t.ok()) throw std::runtime_error("training the induction zoo model: " + t.error().message);
    return d;
  }();
  return dir;
}

}  // namespace ms::test
