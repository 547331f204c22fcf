// Tokenizer loading from a model folder: picks tokenizer.json, vocab.json + merges.txt or
// tokenizer.model, then takes BOS/EOS/UNK/PAD and add_bos/add_eos from config.json,
// generation_config.json, special_tokens_map.json and tokenizer_config.json (later ones win).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/base/json_input.h"
#include "core/tokenizer/tokenizer_bpe.h"
#include "core/tokenizer/tokenizer_load.h"

namespace ms {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path + ": cannot read the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail_input(path + ": read error");
  return ss.str();
}

json read_json_file(const std::string& path) {
  return parse_json_input(read_text_file(path), path);
}

void check_vocab_id(int64_t id, size_t n_entries, const std::string& where) {
  // A vocabulary's ids are 0..n-1 (a few gaps are tolerated); one huge id in a small file
  // would otherwise allocate a table of that size.
  const int64_t limit = std::min<int64_t>(kMaxVocabId, 2 * static_cast<int64_t>(n_entries) + 1024);
  if (id < 0 || id > limit)
    fail_input(where + ": id " + std::to_string(id) + " is out of range for a vocabulary of " +
               std::to_string(n_entries) + " entries (ids must be 0 to " + std::to_string(limit) +
               " = min(2^24, 2 x entries + 1024))");
}

namespace {

constexpr const char* kEndOfText = "<|endoftext|>";

std::unique_ptr<BaseTokenizer> build_vocab_merges(const std::string& vocab_json,
                                                  const std::string& merges_txt) {
  const json vocab_doc = read_json_file(vocab_json);
  if (!vocab_doc.is_object()) fail_input(vocab_json + ": expected an object of token: id");
  ByteLevelBpeModel model;
  for (const auto& [token, id_json] : vocab_doc.items()) {
    int64_t id64 = 0;
    if (!json_int_in(id_json, 0, INT32_MAX, &id64))
      fail_input(vocab_json + ": the id of '" + token + "' is not a valid token id");
    check_vocab_id(id64, vocab_doc.size(), vocab_json + ": the token '" + token + "'");
    const auto id = static_cast<size_t>(id64);
    if (model.vocab.size() <= id) model.vocab.resize(id + 1);
    model.vocab[id] = token;
  }
  std::istringstream lines(read_text_file(merges_txt));
  std::string line;
  size_t line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      fail_input(merges_txt + ": line " + std::to_string(line_no) + " is not two tokens: '" +
                 line + "'");
    model.merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  PreTokenizer pre;
  pre.add_byte_level(false, true);
  std::unique_ptr<BaseTokenizer> tok;
  try {
    tok = std::make_unique<ByteLevelBpeTokenizer>(std::move(model), Normalizer(), std::move(pre));
  } catch (const InputError& e) {
    fail_input(merges_txt + ": " + e.what());
  }
  tok->set_kind("byte-level BPE (vocab.json + merges.txt)");
  // GPT-2's convention (Hugging Face's GPT2Tokenizer defaults): <|endoftext|> is BOS, EOS, UNK.
  const int32_t eot = tok->token_id(kEndOfText);
  if (eot >= 0) {
    AddedToken t;
    t.id = eot;
    t.content = kEndOfText;
    tok->add_tokens({t});
    tok->special().bos = tok->special().eos = tok->special().unk = eot;
  }
  return tok;
}

// "<s>" or {"content": "<s>", ...} -> the token's id, -1 when absent or unknown.
int32_t token_from_config(const BaseTokenizer& tok, const json& v) {
  if (v.is_string()) return tok.token_id(v.get<std::string>());
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return tok.token_id(v["content"].get<std::string>());
  return -1;
}

// The first of an id or a list of ids (Llama 3 lists several EOS ids).
// An id outside 0..2^31-1 counts as absent (never truncated: 4294967297 must not become 1).
int32_t id_from_config(const json& v) {
  const json* id = v.is_array() ? (v.empty() ? nullptr : &v[0]) : &v;
  int64_t x = 0;
  if (!id || !json_int_in(*id, 0, INT32_MAX, &x)) return -1;
  return static_cast<int32_t>(x);
}

struct SpecialSlot {
  const char* name;
  int32_t SpecialTokens::*field;
};
constexpr SpecialSlot kSlots[] = {{"bos", &SpecialTokens::bos}, {"eos", &SpecialTokens::eos},
                                  {"unk", &SpecialTokens::unk}, {"pad", &SpecialTokens::pad}};

void apply_model_config(BaseTokenizer& tok, const std::string& path) {
  const json doc = read_json_file(path);
  if (!doc.is_object()) fail_input(path + ": the top level is not a JSON object");
  SpecialTokens& s = tok.special();
  for (const SpecialSlot& slot : kSlots) {
    const std::string key = std::string(slot.name) + "_token_id";
    if (!doc.contains(key)) continue;
    const int32_t id = id_from_config(doc[key]);
    if (id >= 0 && id < tok.vocab_size()) s.*slot.field = id;
  }
}

void apply_token_config(BaseTokenizer& tok, const std::string& path, bool take_added) {
  const json doc = read_json_file(path);
  if (!doc.is_object()) fail_input(path + ": the top level is not a JSON object");
  if (take_added && doc.contains("added_tokens_decoder") && doc["added_tokens_decoder"].is_object()) {
    std::vector<AddedToken> added;
    for (const auto& [id_text, a] : doc["added_tokens_decoder"].items()) {
      if (!a.is_object() || !a.contains("content") || !a["content"].is_string()) continue;
      AddedToken t;
      const bool digits = !id_text.empty() && id_text.size() <= 10 &&
                          id_text.find_first_not_of("0123456789") == std::string::npos;
      const long long id = digits ? std::stoll(id_text) : -1;
      if (id < 0 || id > INT32_MAX)
        fail_input(path + ": added_tokens_decoder key '" + id_text + "' is not a token id");
      t.id = static_cast<int32_t>(id);
      t.content = a["content"].get<std::string>();
      t.special = a.value("special", false);
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      t.normalized = a.value("normalized", !t.special);
      t.single_word = a.value("single_word", false);
      added.push_back(std::move(t));
    }
    tok.add_tokens(added);
  }
  SpecialTokens& s = tok.special();
  for (const SpecialSlot& slot : kSlots) {
    const std::string key = std::string(slot.name) + "_token";
    if (!doc.contains(key)) continue;
    const int32_t id = token_from_config(tok, doc[key]);
    if (id >= 0) s.*slot.field = id;
  }
  if (doc.contains("add_bos_token") && doc["add_bos_token"].is_boolean())
    s.add_bos = doc["add_bos_token"].get<bool>();
  if (doc.contains("add_eos_token") && doc["add_eos_token"].is_boolean())
    s.add_eos = doc["add_eos_token"].get<bool>();
}

}  // namespace

std::unique_ptr<BaseTokenizer> read_vocab_merges(const std::string& vocab_json,
                                                 const std::string& merges_txt) {
  try {
    return build_vocab_merges(vocab_json, merges_txt);
  } catch (const json::exception& e) {
    fail_input(vocab_json + ": unexpected structure: " + e.what());
  }
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer_json(const std::string& path) {
  return guard([&]() -> std::unique_ptr<Tokenizer> { return read_tokenizer_json(path); });
}

Result<std::unique_ptr<Tokenizer>> load_vocab_merges(const std::string& vocab_json,
                                                     const std::string& merges_txt) {
  return guard([&]() -> std::unique_ptr<Tokenizer> {
    return read_vocab_merges(vocab_json, merges_txt);
  });
}

Result<std::unique_ptr<Tokenizer>> load_sentencepiece_model(const std::string& path) {
  return guard([&]() -> std::unique_ptr<Tokenizer> { return read_sentencepiece_model(path); });
}

Result<std::unique_ptr<Tokenizer>> tokenizer_from_gguf_vocab(const GgufVocab& vocab) {
  return guard([&]() -> std::unique_ptr<Tokenizer> { return build_gguf_tokenizer(vocab); });
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& dir) {
  return guard([&]() -> std::unique_ptr<Tokenizer> {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) fail_input(dir + ": not a folder");
    const auto file = [&](const char* name) { return (fs::path(dir) / name).string(); };
    const auto has = [&](const char* name) { return fs::is_regular_file(file(name), ec); };
    std::unique_ptr<BaseTokenizer> tok;
    bool from_json = false;
    if (has("tokenizer.json")) {
      tok = read_tokenizer_json(file("tokenizer.json"));
      from_json = true;
    } else if (has("vocab.json") && has("merges.txt")) {
      tok = read_vocab_merges(file("vocab.json"), file("merges.txt"));
    } else if (has("tokenizer.model")) {
      tok = read_sentencepiece_model(file("tokenizer.model"));
    } else {
      return nullptr;
    }
    // Lowest priority first: each file overrides what the ones before it set.
    const auto apply = [&](const char* name, auto&& fn) {
      if (!has(name)) return;
      try {
        fn(file(name));
      } catch (const json::exception& e) {
        fail_input(file(name) + ": unexpected structure: " + e.what());
      }
    };
    apply("config.json", [&](const std::string& f) { apply_model_config(*tok, f); });
    apply("generation_config.json", [&](const std::string& f) { apply_model_config(*tok, f); });
    apply("special_tokens_map.json",
          [&](const std::string& f) { apply_token_config(*tok, f, false); });
    apply("tokenizer_config.json",
          [&](const std::string& f) { apply_token_config(*tok, f, !from_json); });
    return tok;
  });
}

}  // namespace ms
