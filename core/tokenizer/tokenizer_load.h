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

// The largest token id a vocabulary file may use (the model config limit, 2^24).
constexpr int64_t kMaxVocabId = int64_t{1} << 24;
// Throws InputError "<where>: id N is out of range ..." unless 0 <= id <= min(2^24, 2 x n + 1024):
// a vocabulary's ids are dense, so one huge id in a small file cannot size a huge table.
void check_vocab_id(int64_t id, size_t n_entries, const std::string& where);

// Whole file as bytes; throws InputError "<path>: cannot read" when it cannot be opened.
std::string read_text_file(const std::string& path);
// Parsed JSON; throws InputError "<path>: not valid JSON: ..." on a syntax error.
nlohmann::json read_json_file(const std::string& path);

}  // namespace ms
