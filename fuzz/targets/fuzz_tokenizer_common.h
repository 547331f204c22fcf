// Shared by the tokenizer fuzz targets: exercise a tokenizer that loaded on a few fixed texts.
#pragma once

#include "core/tokenizer/tokenizer.h"

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

}  // namespace ms::fuzz
