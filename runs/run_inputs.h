// What a run reads its prompts as and how it labels tokens in its stored inputs, the same for every
// front end: a prompt's token ids (given, or the tokenizer's encoding with special tokens) and a
// token's label (the tokenizer's text, else "<id>").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/io/prompts.h"
#include "core/model/model.h"
#include "core/tokenizer/token_label.h"  // token_label: the one label of a token id

namespace ms {

// The token ids of a prompt: its tokens when given, else its text encoded (with BOS etc.). Throws a
// usage error when the text cannot be encoded (no tokenizer) or encodes to nothing.
std::vector<int32_t> prompt_tokens(const Model& m, const PromptRecord& r);

}  // namespace ms
