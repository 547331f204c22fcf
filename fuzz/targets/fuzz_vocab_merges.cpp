// Fuzz target: GPT-2 style vocab.json + merges.txt (the input is the two files separated by a
// NUL byte), then encode/decode of a few texts.
#include "fuzz/fuzz_support.h"
#include "fuzz/targets/fuzz_tokenizer_common.h"

MECHSCOPE_FUZZ_TARGET(vocab_merges) {
  using namespace ms;
  const auto parts = fuzz::split_parts(data, size, 2);
  const std::string vocab = fuzz::write_file("vocab.json", parts[0]);
  const std::string merges = fuzz::write_file("merges.txt", parts[1]);
  auto tok = load_vocab_merges(vocab, merges);
  if (!fuzz::accept(tok, "load_vocab_merges")) return;
  fuzz::expect_input_errors_only([&] { fuzz::exercise_tokenizer(*tok.value()); }, "encode");
}
