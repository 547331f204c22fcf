// A reader for SentencePiece tokenizer.model files (a serialized ModelProto) without the
// sentencepiece library: Debian's libsentencepiece carries its own protobuf runtime, which
// collides with LibTorch's at load time, so mechscope parses the few fields it needs itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/result.h"

namespace ms {

struct SentencePieceModel {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<int32_t> types;  // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
  int32_t model_type = 1;      // 1 unigram, 2 BPE, 3 word, 4 char
  bool byte_fallback = false;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string normalizer_name;  // "identity", "nmt_nfkc", ...
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

// Parses the protobuf wire format (ModelProto: pieces = 1, trainer_spec = 2, normalizer_spec = 3).
// Malformed or truncated files give kBadInput errors naming the file and the byte offset.
Result<SentencePieceModel> read_spm_proto(const std::string& path);
Result<SentencePieceModel> parse_spm_proto(const std::string& bytes, const std::string& where);

}  // namespace ms
