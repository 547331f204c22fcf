// The one warning for a prompt longer than the model's context, shared by the CLI and the workbench.
#pragma once

#include <cstdint>
#include <string>

namespace ms {

struct ModelConfig;

// "" when n_tokens positions fit the model's context (n_ctx), else a warning for people: a model
// with rotary positions runs past its context, but what it computes there is outside what it was
// trained on (attention patterns degenerate). Models with learned positions cannot run past n_ctx
// at all (the forward pass refuses). The CLI prints it on stderr, the workbench under the prompt.
std::string context_warning(const ModelConfig& cfg, int64_t n_tokens);

}  // namespace ms
