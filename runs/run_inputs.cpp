// Prompt tokens and token labels of stored runs.
#include "runs/run_inputs.h"

#include "core/base/result.h"

namespace ms {

std::vector<int32_t> prompt_tokens(const Model& m, const PromptRecord& r) {
  if (!r.tokens.empty()) return r.tokens;
  if (!m.tokenizer())
    fail_usage(m.source() + " has no tokenizer files (tokenizer.json, vocab.json + merges.txt, "
               "tokenizer.model); give token ids with --tokens 1,2,3");
  std::vector<int32_t> ids = m.tokenizer()->encode(r.text, true);
  if (ids.empty()) fail_usage("the prompt '" + r.text + "' encodes to no tokens");
  return ids;
}

}  // namespace ms
