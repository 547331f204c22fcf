// Training a byte-level BPE tokenizer on a text corpus (GPT-2's pre-tokenizer, the most frequent
// adjacent pair merged first) and writing it as a Hugging Face tokenizer.json that
// load_tokenizer_json reads back; also the fixed ASCII tokenizer of the zoo's task models.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/base/result.h"

namespace ms {

// A byte-level BPE vocabulary. Ids: the special tokens first, then the base tokens, then one
// token per merge, in merge order. Tokens are spelled in GPT-2's byte-level alphabet.
struct BpeModel {
  std::vector<std::string> special;  // ids 0 .. special.size() - 1; special[0] is BOS/EOS
  std::vector<std::string> vocab;    // every id, specials included
  std::vector<std::pair<std::string, std::string>> merges;
};

struct BpeTrainOptions {
  int32_t vocab_size = 1024;  // specials + 256 bytes + merges
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  int64_t min_frequency = 2;  // pairs seen fewer times are never merged
};

// Trains on the corpus (split into words by GPT-2's pattern, as the tokenizer will split them).
// Ties between equally frequent pairs go to the pair whose merged spelling sorts first, so the
// result depends on the corpus alone.
Result<BpeModel> train_bpe(const std::string& corpus, const BpeTrainOptions& opts = {});

// The zoo's task tokenizer: id 0 is "<|endoftext|>", ids 1..127 are the ASCII bytes 1..127.
BpeModel ascii_bpe_model();

// tokenizer.json text (Hugging Face tokenizers format, ByteLevel pre-tokenizer and decoder, no
// prefix space); with add_bos the post-processor prepends special[0] to every encoding.
std::string bpe_tokenizer_json(const BpeModel& model, bool add_bos);

}  // namespace ms
