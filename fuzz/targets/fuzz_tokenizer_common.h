// Shared by the tokenizer fuzz targets: exercise a tokenizer that loaded on a few fixed texts.
#pragma once

#include <cstdlib>
#include <string_view>

#include "core/tokenizer/tokenizer.h"
#include "fuzz/fuzz_support.h"

namespace ms::fuzz {

inline void exercise_tokenizer(const Tokenizer& tok) {
  static const char* const kTexts[] = {"", "Hello world", " once upon a time, 1234 <|endoftext|> <s>",
                                       "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "\xff\xfe bad utf8 \xc3"};
  for (const char* t : kTexts) {
    const auto ids = tok.encode(t, true, true);
    (void)tok.decode(ids);
  }
  for (int32_t id = 0; id < tok.vocab_size() && id < 64; ++id) (void)tok.token_text(id);
}

// Encodes arbitrary bytes with and without special tokens: every id in the vocabulary, and the ids
// decode. Only input errors may be thrown.
inline void encode_arbitrary(const Tokenizer& tok, const uint8_t* data, size_t size) {
  expect_input_errors_only([&] {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (bool special : {false, true}) {
      const auto ids = tok.encode(text, special, special);
      for (int32_t id : ids)
        if (id < 0 || id >= tok.vocab_size()) std::abort();
      (void)tok.decode(ids);
    }
  }, "encode");
}

}  // namespace ms::fuzz
