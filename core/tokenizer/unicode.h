// UTF-8 and Unicode helpers the tokenizers share: validation with the offending byte offset,
// code point iteration, normalization forms (via utf8proc), and GPT-2's byte-to-unicode map
// that byte-level BPE uses to spell arbitrary bytes as printable characters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ms {

constexpr size_t kUtf8Valid = static_cast<size_t>(-1);

// Offset of the first byte that does not start or continue a well-formed UTF-8 sequence
// (overlong forms, surrogates and code points above U+10FFFF are ill-formed), or kUtf8Valid.
size_t utf8_invalid_offset(std::string_view s);
// Throws InputError "<what>: invalid UTF-8 at byte N (0xNN)" when s is not valid UTF-8.
void check_utf8(std::string_view s, const char* what = "text");

// Length of the sequence a lead byte starts (1 for ASCII and for stray bytes).
inline size_t utf8_seq_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}
// Decodes the code point at s[pos] (s must be valid UTF-8) and advances pos past it.
uint32_t utf8_next(std::string_view s, size_t& pos);
void utf8_append(std::string& out, uint32_t cp);

// Unicode White_Space, and letters/numbers/underscore (for added tokens' single_word flag).
bool is_unicode_space(uint32_t cp);
bool is_word_char(uint32_t cp);

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
// Normalizes valid UTF-8 text; pure ASCII comes back unchanged without a copy through utf8proc.
std::string unicode_normalize(std::string_view s, NormalForm form);
std::string unicode_lowercase(std::string_view s);

// Shows bytes that are not valid UTF-8 as \xNN, leaving valid sequences as they are.
std::string escape_invalid_utf8(std::string_view s);

// GPT-2's bytes_to_unicode(): each byte maps to one printable code point.
uint32_t byte_to_unicode(uint8_t b);
// The inverse: the byte a code point stands for, or -1 when it is not in the map.
int unicode_to_byte(uint32_t cp);
// Spells raw bytes in the byte-level alphabet, and back. byte_level_decode passes through, as
// their own UTF-8 bytes, characters outside the alphabet (as Hugging Face's decoder does).
std::string byte_level_encode(std::string_view bytes);
std::string byte_level_decode(std::string_view text);

}  // namespace ms
