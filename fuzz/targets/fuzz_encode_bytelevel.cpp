// Fuzz target: encode arbitrary bytes (invalid UTF-8 included) with a byte-level BPE vocabulary
// (the bundled default model's tokenizer.json); the ids must be in the vocabulary and decode.
#include "core/tokenizer/tokenizer.h"
#include "fuzz/fuzz_support.h"

MECHSCOPE_FUZZ_TARGET(encode_bytelevel) {
  using namespace ms;
  static const std::unique_ptr<Tokenizer> tok = [] {
    auto t = load_tokenizer_json(fuzz::source_path("resources/models/default/tokenizer.json"));
    if (!t) std::abort();
    return std::move(t.value());
  }();
  fuzz::expect_input_errors_only([&] {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (bool special : {false, true}) {
      const auto ids = tok->encode(text, special, special);
      for (int32_t id : ids)
        if (id < 0 || id >= tok->vocab_size()) std::abort();
      (void)tok->decode(ids);
    }
  }, "encode");
}
