// Prompt sets for analyses: a .txt file (one prompt per non-empty line) or a .jsonl file of
// {"text": ..., "continuation": ..., "choices": [...], "answer": index} objects (or "tokens": [ids]
// instead of "text" for models without a tokenizer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/result.h"

namespace ms {

struct PromptRecord {
  std::string text;
  std::vector<int32_t> tokens;       // optional: token ids instead of text (models without a tokenizer)
  std::string continuation;          // optional: scored by the loss metric
  std::vector<std::string> choices;  // optional: multiple choice, scored by log-probability
  int answer = -1;                   // index into choices
};

// Reads a .txt or .jsonl prompt file. Errors (kBadInput) name the file and the line.
Result<std::vector<PromptRecord>> read_prompts(const std::string& path);

}  // namespace ms
