// The one token label (see token_label.h).
#include "core/tokenizer/token_label.h"

#include "core/model/model.h"
#include "core/tokenizer/tokenizer.h"

namespace ms {

std::string token_id_label(int32_t id) { return "<" + std::to_string(id) + ">"; }

std::string token_label(const Tokenizer* tok, int32_t id) {
  if (tok && id >= 0 && id < tok->vocab_size()) return tok->token_text(id);
  return token_id_label(id);
}

std::string token_label(const Model& model, int32_t id) { return token_label(model.tokenizer(), id); }

std::string token_display(const std::string& label) {
  if (label.empty()) return "\u2205";
  std::string out;
  out.reserve(label.size() + 8);
  for (unsigned char c : label) {
    switch (c) {
      case ' ': out += "\u00b7"; break;
      case '\n': out += "\u21b5"; break;
      case '\t': out += "\u2192"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char* hex = "0123456789ABCDEF";
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

}  // namespace ms
