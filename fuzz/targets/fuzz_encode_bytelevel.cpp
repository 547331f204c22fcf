// Fuzz target: encode arbitrary bytes (invalid UTF-8 included) with a byte-level BPE vocabulary
// (the bundled default model's tokenizer.json); the ids must be in the vocabulary and decode.
#include "core/tokenizer/tokenizer.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/targets/fuzz_tokenizer_common.h"

MECHSCOPE_FUZZ_TARGET(encode_bytelevel) {
  using namespace ms;
  static const std::unique_ptr<Tokenizer> tok = [] {
    auto t = load_tokenizer_json(fuzz::source_path("resources/models/default/tokenizer.json"));
    if (!t) std::abort();
    return std::move(t.value());
  }();
  fuzz::encode_arbitrary(*tok, data, size);
}
