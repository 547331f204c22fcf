// Fuzz target: a Hugging Face tokenizer.json (model, normalizer, pre-tokenizer, added tokens,
// post-processor), then encode/decode of a few texts with what loaded.
#include "fuzz/fuzz_support.h"
#include "fuzz/targets/fuzz_tokenizer_common.h"

MECHSCOPE_FUZZ_TARGET(tokenizer_json) {
  using namespace ms;
  const std::string path = fuzz::write_file("tokenizer.json", {reinterpret_cast<const char*>(data), size});
  auto tok = load_tokenizer_json(path);
  if (!fuzz::accept(tok, "load_tokenizer_json")) return;
  fuzz::expect_input_errors_only([&] { fuzz::exercise_tokenizer(*tok.value()); }, "encode");
}
