// Internal entry points of the tokenizer loaders, shared by tokenizer_json.cpp,
// tokenizer_load.cpp, tokenizer_sentencepiece.cpp and tokenizer_gguf.cpp. Each throws InputError
// whose message starts with the file it was reading.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/tokenizer/tokenizer_base.h"

namespace ms {

std::unique_ptr<BaseTokenizer> read_tokenizer_json(const std::string& path);
std::unique_ptr<BaseTokenizer> read_vocab_merges(const std::string& vocab_json,
                                                 const std::string& merges_txt);
std::unique_ptr<BaseTokenizer> read_sentencepiece_model(const std::string& path);
std::unique_ptr<BaseTokenizer> build_gguf_tokenizer(const GgufVocab& vocab);

// Whole file as bytes; throws InputError "<path>: cannot read" when it cannot be opened.
std::string read_text_file(const std::string& path);
// Parsed JSON; throws InputError "<path>: not valid JSON: ..." on a syntax error.
nlohmann::json read_json_file(const std::string& path);

}  // namespace ms
