// The context-length warning (see context_warning.h).
#include "core/model/context_warning.h"

#include "core/model/model_config.h"

namespace ms {

std::string context_warning(const ModelConfig& cfg, int64_t n_tokens) {
  if (cfg.n_ctx <= 0 || n_tokens <= cfg.n_ctx) return "";
  return "the prompt has " + std::to_string(n_tokens) + " tokens, more than the model's context of " +
         std::to_string(cfg.n_ctx) + " positions: positions past " + std::to_string(cfg.n_ctx) +
         " are outside what the model was trained on";
}

}  // namespace ms
