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

}  // namespace ms
