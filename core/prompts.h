// Prompt sets for analyses: a .txt file (one prompt per non-empty line) or a .jsonl file of
// {"text": ..., "continuation": ..., "choices": [...], "answer": index} objects.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace ms {

struct PromptRecord {
  std::string text;
  std::string continuation;          // optional: scored by the loss metric
  std::vector<std::string> choices;  // optional: multiple choice, scored by log-probability
  int answer = -1;                   // index into choices
};

// Reads a .txt or .jsonl prompt file. Errors (kBadInput) name the file and the line.
Result<std::vector<PromptRecord>> read_prompts(const std::string& path);

}  // namespace ms
