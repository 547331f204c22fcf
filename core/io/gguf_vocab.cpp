// GgufFile's typed metadata getters and the embedded tokenizer (tokenizer.ggml.*), read into a
// GgufVocab with llama.cpp's defaults where a key is absent.
#include "core/io/gguf.h"

namespace ms {
namespace {

const char* value_kind(const GgufValue& v) {
  switch (v.v.index()) {
    case 0: return "an integer";
    case 1: return "a float";
    case 2: return "a bool";
    case 3: return "a string";
    default: return "an array";
  }
}

std::string wrong_type(const std::string& path, const std::string& key, const GgufValue& v,
                       const char* expected) {
  return path + ": metadata key '" + key + "' is " + value_kind(v) + ", expected " + expected;
}

[[noreturn]] void bad_element(const std::string& path, const std::string& key, size_t i,
                              const char* expected) {
  fail_input(path + ": metadata key '" + key + "' element " + std::to_string(i) + " is not " +
             expected);
}

}  // namespace

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = get(key);
  if (!v) fail_input(m_path + ": metadata key '" + key + "' is missing");
  const int64_t* i = std::get_if<int64_t>(&v->v);
  if (!i) fail_input(wrong_type(m_path, key, *v, "an integer"));
  return *i;
}

int64_t GgufFile::get_int(const std::string& key, int64_t fallback) const {
  return get(key) ? get_int(key) : fallback;
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = get(key);
  if (!v) fail_input(m_path + ": metadata key '" + key + "' is missing");
  if (const double* d = std::get_if<double>(&v->v)) return *d;
  if (const int64_t* i = std::get_if<int64_t>(&v->v)) return static_cast<double>(*i);
  fail_input(wrong_type(m_path, key, *v, "a number"));
}

double GgufFile::get_float(const std::string& key, double fallback) const {
  return get(key) ? get_float(key) : fallback;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = get(key);
  if (!v) fail_input(m_path + ": metadata key '" + key + "' is missing");
  const std::string* s = std::get_if<std::string>(&v->v);
  if (!s) fail_input(wrong_type(m_path, key, *v, "a string"));
  return *s;
}

std::string GgufFile::get_string(const std::string& key, const std::string& fallback) const {
  return get(key) ? get_string(key) : fallback;
}

bool GgufFile::get_bool(const std::string& key, bool fallback) const {
  const GgufValue* v = get(key);
  if (!v) return fallback;
  const bool* b = std::get_if<bool>(&v->v);
  if (!b) fail_input(wrong_type(m_path, key, *v, "a bool"));
  return *b;
}

GgufVocab GgufFile::vocab() const {
  const std::string prefix = "tokenizer.ggml.";
  if (!get(prefix + "model")) {
    fail_input(m_path + ": has no embedded tokenizer (metadata key 'tokenizer.ggml.model' is "
               "missing); give a tokenizer with --tokenizer");
  }
  GgufVocab vocab;
  vocab.model = get_string(prefix + "model");
  vocab.pre = get_string(prefix + "pre", "default");

  // Arrays: the whole key must be an array and every element of the expected kind.
  auto array_of = [&](const std::string& key) -> const GgufArray* {
    const GgufValue* v = get(key);
    if (!v) return nullptr;
    const GgufArray* a = std::get_if<GgufArray>(&v->v);
    if (!a) fail_input(wrong_type(m_path, key, *v, "an array"));
    return a;
  };

  const GgufArray* tokens = array_of(prefix + "tokens");
  if (!tokens) fail_input(m_path + ": metadata key 'tokenizer.ggml.tokens' is missing");
  vocab.tokens.reserve(tokens->size());
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string* s = std::get_if<std::string>(&(*tokens)[i].v);
    if (!s) bad_element(m_path, prefix + "tokens", i, "a string");
    vocab.tokens.push_back(*s);
  }
  const size_t n_tokens = vocab.tokens.size();
  if (n_tokens == 0) fail_input(m_path + ": tokenizer.ggml.tokens is empty");
  auto check_length = [&](const std::string& key, size_t n) {
    if (n != n_tokens) {
      fail_input(m_path + ": metadata key '" + key + "' has " + std::to_string(n) +
                 " entries but there are " + std::to_string(n_tokens) + " tokens");
    }
  };

  if (const GgufArray* scores = array_of(prefix + "scores")) {
    check_length(prefix + "scores", scores->size());
    vocab.scores.reserve(n_tokens);
    for (size_t i = 0; i < scores->size(); ++i) {
      const GgufValue& e = (*scores)[i];
      if (const double* d = std::get_if<double>(&e.v)) {
        vocab.scores.push_back(static_cast<float>(*d));
      } else if (const int64_t* n = std::get_if<int64_t>(&e.v)) {
        vocab.scores.push_back(static_cast<float>(*n));
      } else {
        bad_element(m_path, prefix + "scores", i, "a number");
      }
    }
  }
  if (const GgufArray* types = array_of(prefix + "token_type")) {
    check_length(prefix + "token_type", types->size());
    vocab.token_types.reserve(n_tokens);
    for (size_t i = 0; i < types->size(); ++i) {
      const int64_t* t = std::get_if<int64_t>(&(*types)[i].v);
      if (!t || *t < 0 || *t > 6) {
        bad_element(m_path, prefix + "token_type", i, "a token type 0..6");
      }
      vocab.token_types.push_back(static_cast<int32_t>(*t));
    }
  }
  if (const GgufArray* merges = array_of(prefix + "merges")) {
    vocab.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string* s = std::get_if<std::string>(&(*merges)[i].v);
      if (!s) bad_element(m_path, prefix + "merges", i, "a string");
      vocab.merges.push_back(*s);
    }
  }

  // llama.cpp's defaults: SentencePiece ("llama") has <unk> 0, <s> 1, </s> 2, adds BOS and a
  // leading space; other models have no default special tokens and add nothing.
  const bool spm = vocab.model == "llama";
  SpecialTokens& sp = vocab.special;
  sp.bos = spm ? 1 : -1;
  sp.eos = spm ? 2 : -1;
  sp.unk = spm ? 0 : -1;
  sp.pad = -1;
  sp.add_bos = spm;
  sp.add_eos = false;
  vocab.add_space_prefix = spm;
  // An id outside the vocabulary is ignored (the default stays), as llama.cpp does.
  auto special_id = [&](const char* name, int32_t* id) {
    const std::string key = prefix + name;
    if (!get(key)) return;
    int64_t v = get_int(key);
    if (v >= 0 && v < static_cast<int64_t>(n_tokens)) *id = static_cast<int32_t>(v);
  };
  special_id("bos_token_id", &sp.bos);
  special_id("eos_token_id", &sp.eos);
  special_id("unknown_token_id", &sp.unk);
  special_id("padding_token_id", &sp.pad);
  for (int32_t* id : {&sp.bos, &sp.eos, &sp.unk}) {
    if (*id >= static_cast<int32_t>(n_tokens)) *id = -1;
  }
  sp.add_bos = get_bool(prefix + "add_bos_token", sp.add_bos);
  sp.add_eos = get_bool(prefix + "add_eos_token", sp.add_eos);
  vocab.add_space_prefix = get_bool(prefix + "add_space_prefix", vocab.add_space_prefix);
  return vocab;
}

}  // namespace ms
