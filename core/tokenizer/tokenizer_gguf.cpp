// Builds a tokenizer from GGUF metadata (tokenizer.ggml.*): model "llama" is SentencePiece BPE
// by piece score with <0xXX> byte fallback (llama.cpp's llm_tokenizer_spm), model "gpt2" is
// byte-level BPE with the pre-tokenizer pattern that tokenizer.ggml.pre names.
#include "core/tokenizer/tokenizer_bpe.h"
#include "core/tokenizer/tokenizer_load.h"
#include "core/tokenizer/tokenizer_spm.h"

namespace ms {
namespace {

constexpr int32_t kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4;

bool one_of(const std::string& s, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (s == n) return true;
  return false;
}

// tokenizer.ggml.pre -> pre-tokenizer, as llama.cpp maps them. Returns false when `pre` is not
// known here and GPT-2's pattern stands in for it.
bool gguf_pre_tokenizer(const std::string& pre, PreTokenizer& out) {
  if (one_of(pre, {"llama3", "llama-v3", "llama-bpe", "smaug-bpe", "dbrx", "falcon3", "pixtral"})) {
    out.add_split_regex(kLlama3Pattern, SplitBehavior::kIsolated, false);
    out.add_byte_level(false, false);
    return true;
  }
  if (one_of(pre, {"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"})) {
    out.add_split_regex(kQwen2Pattern, SplitBehavior::kIsolated, false);
    out.add_byte_level(false, false);
    return true;
  }
  if (one_of(pre, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
                   "minerva-7b"})) {
    out.add_digits(true);
    out.add_byte_level(false, true);
    return true;
  }
  out.add_byte_level(false, true);
  return one_of(pre, {"", "default", "gpt-2", "gpt2", "mpt", "olmo", "gpt-neox", "jais",
                      "poro-chat", "bloom", "phi-2"});
}

std::vector<AddedToken> added_from_types(const GgufVocab& v) {
  std::vector<AddedToken> out;
  for (size_t i = 0; i < v.token_types.size() && i < v.tokens.size(); ++i) {
    const int32_t type = v.token_types[i];
    if (type != kTypeUnknown && type != kTypeControl && type != kTypeUserDefined) continue;
    AddedToken t;
    t.id = static_cast<int32_t>(i);
    t.content = v.tokens[i];
    t.special = type != kTypeUserDefined;
    out.push_back(std::move(t));
  }
  return out;
}

std::unique_ptr<BaseTokenizer> build_llama(const GgufVocab& v) {
  if (v.scores.size() != v.tokens.size())
    fail_input("GGUF vocabulary: model 'llama' needs one score per token (tokenizer.ggml.scores "
               "has " + std::to_string(v.scores.size()) + ", tokens " +
               std::to_string(v.tokens.size()) + ")");
  SpmBpeModel m;
  m.pieces = v.tokens;
  m.scores = v.scores;
  if (v.token_types.size() == v.tokens.size()) m.types = v.token_types;
  m.unk = v.special.unk;
  m.strip_leading_space = v.add_space_prefix;
  Normalizer norm;
  if (v.add_space_prefix) norm.add_prepend(kSpmSpace);
  norm.add_replace(" ", kSpmSpace);
  auto tok = std::make_unique<SpmBpeTokenizer>(std::move(m), std::move(norm), PreTokenizer());
  tok->set_kind("SentencePiece BPE (GGUF)");
  return tok;
}

std::unique_ptr<BaseTokenizer> build_gpt2(const GgufVocab& v) {
  ByteLevelBpeModel m;
  m.vocab = v.tokens;
  m.merges.reserve(v.merges.size());
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& s = v.merges[i];
    const size_t sp = s.find(' ', 1);
    if (sp == std::string::npos)
      fail_input("GGUF vocabulary: merge " + std::to_string(i + 1) + " '" + s +
                 "' is not two tokens");
    m.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
  }
  PreTokenizer pre;
  const bool known = gguf_pre_tokenizer(v.pre, pre);
  std::unique_ptr<BaseTokenizer> tok;
  try {
    tok = std::make_unique<ByteLevelBpeTokenizer>(std::move(m), Normalizer(), std::move(pre));
  } catch (const InputError& e) {
    fail_input(std::string("GGUF vocabulary: ") + e.what());
  }
  tok->set_kind(known ? "byte-level BPE (GGUF)"
                      : "byte-level BPE (GGUF; pre-tokenizer '" + v.pre +
                            "' approximated by GPT-2's pattern)");
  return tok;
}

}  // namespace

std::unique_ptr<BaseTokenizer> build_gguf_tokenizer(const GgufVocab& v) {
  if (v.tokens.empty()) fail_input("GGUF vocabulary: tokenizer.ggml.tokens is empty");
  std::unique_ptr<BaseTokenizer> tok;
  if (v.model == "llama") tok = build_llama(v);
  else if (v.model == "gpt2") tok = build_gpt2(v);
  else fail_input("GGUF vocabulary: tokenizer.ggml.model '" + v.model + "' is not supported "
                  "(only 'llama' and 'gpt2')");
  tok->add_tokens(added_from_types(v));
  tok->special() = v.special;
  return tok;
}

}  // namespace ms
