// Fuzz target: a Hugging Face config.json through the model config parser and its validation.
#include "core/model/model_config.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(model_config) {
  using namespace ms;
  auto cfg = parse_hf_config_text(std::string(reinterpret_cast<const char*>(data), size), "config.json");
  if (fuzz::accept(cfg, "parse_hf_config_text")) (void)cfg.value().to_json();
}
