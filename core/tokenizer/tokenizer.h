// The tokenizer interface and its loaders: byte-level BPE (GPT-2, GPT-NeoX, Llama-3, Qwen2),
// SentencePiece-style BPE with byte fallback (Llama-2, Mistral), from tokenizer.json,
// vocab.json + merges.txt, SentencePiece tokenizer.model, or GGUF metadata.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"

namespace ms {

struct SpecialTokens {
  int32_t bos = -1;  // -1: none
  int32_t eos = -1;
  int32_t unk = -1;
  int32_t pad = -1;
  bool add_bos = false;  // encode(..., add_special = true) prepends BOS
  bool add_eos = false;  // encode(..., add_special = true) appends EOS
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Text to ids. Throws InputError on invalid UTF-8 (the message says at which byte).
  // add_special: prepend BOS / append EOS as the tokenizer's config says.
  // parse_special: special and added tokens written in the text (e.g. "<|endoftext|>") map to
  // their ids instead of being split like ordinary text.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                                      bool parse_special = true) const = 0;
  // Ids to text. For byte-level BPE decode(encode(s)) == s for any valid UTF-8 s (NFC(s) when
  // the tokenizer normalizes to NFC first, as GPT-NeoX's tokenizer.json does). The result is the
  // tokens' raw bytes, which need not be valid UTF-8 for a partial sequence. Ids outside
  // [0, vocab_size()) (a model's padded embedding rows) decode to nothing, as in Hugging Face.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  // One token as a person reads it (for token chips and heatmap labels), e.g. " the", "<0x0A>";
  // bytes that are not valid UTF-8 on their own show as \xNN; an id outside the vocabulary as
  // "[50300?]".
  virtual std::string token_text(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;
  // A short human description: "byte-level BPE (tokenizer.json)", "SentencePiece BPE (tokenizer.model)".
  virtual std::string kind() const = 0;

  const SpecialTokens& special() const { return m_special; }
  SpecialTokens& special() { return m_special; }

 private:
  SpecialTokens m_special;
};

// The tokenizer as GGUF metadata carries it (tokenizer.ggml.*), filled by the GGUF loader.
struct GgufVocab {
  std::string model;                 // "llama" (SentencePiece BPE by scores) or "gpt2" (byte-level BPE)
  std::string pre;                   // tokenizer.ggml.pre, e.g. "default", "llama-bpe", "qwen2"
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens
  std::vector<float> scores;         // tokenizer.ggml.scores (may be empty for gpt2)
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type: 1 normal, 2 unknown, 3 control,
                                     // 4 user defined, 5 unused, 6 byte
  std::vector<std::string> merges;   // tokenizer.ggml.merges ("a b"), gpt2 only
  SpecialTokens special;             // bos/eos/unk/pad ids, add_bos_token, add_eos_token
  bool add_space_prefix = true;      // tokenizer.ggml.add_space_prefix (llama default true)
};

// Loads the tokenizer of a Hugging Face model folder: tokenizer.json, else vocab.json +
// merges.txt, else tokenizer.model. Special tokens and add_bos come from tokenizer_config.json,
// special_tokens_map.json, generation_config.json and config.json when present.
// Returns nullptr (not an error) when the folder has no tokenizer files at all; an Error naming
// the file when one is present but malformed.
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& dir);

// The individual loaders (paths to the files themselves).
Result<std::unique_ptr<Tokenizer>> load_tokenizer_json(const std::string& path);
Result<std::unique_ptr<Tokenizer>> load_vocab_merges(const std::string& vocab_json,
                                                     const std::string& merges_txt);
Result<std::unique_ptr<Tokenizer>> load_sentencepiece_model(const std::string& path);
Result<std::unique_ptr<Tokenizer>> tokenizer_from_gguf_vocab(const GgufVocab& vocab);

}  // namespace ms
