// Fuzz target: a SentencePiece tokenizer.model (protobuf ModelProto), then encode/decode.
#include "fuzz/fuzz_support.h"
#include "fuzz/targets/fuzz_tokenizer_common.h"

MECHSCOPE_FUZZ_TARGET(spm_model) {
  using namespace ms;
  const std::string path = fuzz::write_file("tokenizer.model", {reinterpret_cast<const char*>(data), size});
  auto tok = load_sentencepiece_model(path);
  if (!fuzz::accept(tok, "load_sentencepiece_model")) return;
  fuzz::expect_input_errors_only([&] { fuzz::exercise_tokenizer(*tok.value()); }, "encode");
}
