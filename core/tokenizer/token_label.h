// One token as every front end shows and stores it: the tokenizer's text of the token, or "<id>"
// when there is no tokenizer or the id is outside its vocabulary. The CLI, batch, reports, stored
// records (inputs, hidden sinks, massive activations) and the workbench all use these functions.
#pragma once

#include <cstdint>
#include <string>

namespace ms {

class Tokenizer;
class Model;

// "<id>": the label of a token no tokenizer can name (a model without tokenizer files, or a
// model's padded embedding rows past the tokenizer's vocabulary).
std::string token_id_label(int32_t id);
// Tokenizer::token_text(id) when tok names the id, else token_id_label(id). Whitespace stays as
// is (" the"), bytes that are not valid UTF-8 show as \xNN (Tokenizer::token_text).
std::string token_label(const Tokenizer* tok, int32_t id);
// The same with the model's tokenizer (none: "<id>").
std::string token_label(const Model& model, int32_t id);

// A label made visible for display (workbench chips, axes and predictions; report tables):
// space -> "·" (U+00B7), newline -> "↵" (U+21B5), tab -> "→" (U+2192), carriage return -> "\r",
// other control bytes -> "\xNN", and the empty label -> "∅" (U+2205). Stored labels keep the raw
// text; only what is drawn or printed for people goes through this. The symbols are in the ranges
// the workbench's font loads (views/gui_window.cpp).
std::string token_display(const std::string& label);

}  // namespace ms
