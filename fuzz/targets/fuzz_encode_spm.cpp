// Fuzz target: encode arbitrary bytes (invalid UTF-8 included) with a SentencePiece vocabulary
// (stories260K's 512-piece Llama tokenizer from its GGUF file, byte fallback); the ids must be in
// the vocabulary and decode.
#include "core/io/gguf.h"
#include "core/tokenizer/tokenizer.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/targets/fuzz_tokenizer_common.h"

MECHSCOPE_FUZZ_TARGET(encode_spm) {
  using namespace ms;
  static const std::unique_ptr<Tokenizer> tok = [] {
    auto g = GgufFile::open(fuzz::reference_path("stories260K-gguf/stories260K.gguf"));
    if (!g) std::abort();
    auto t = tokenizer_from_gguf_vocab(g.value()->vocab());
    if (!t) std::abort();
    return std::move(t.value());
  }();
  fuzz::encode_arbitrary(*tok, data, size);
}
