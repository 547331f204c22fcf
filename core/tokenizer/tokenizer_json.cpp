// Reads Hugging Face tokenizers' tokenizer.json (model BPE): byte-level (ByteLevel pre-tokenizer or
// decoder) or SentencePiece-style (Metaspace / Prepend+Replace "▁", byte_fallback), with its
// normalizer, pre-tokenizer, added tokens and the BOS/EOS of its post_processor.
#include <nlohmann/json.hpp>
#include "core/base/json_input.h"

#include "core/tokenizer/tokenizer_bpe.h"
#include "core/tokenizer/tokenizer_load.h"
#include "core/tokenizer/tokenizer_spm.h"

namespace ms {
namespace {

using json = nlohmann::json;

std::string type_of(const json& node) {
  return node.is_object() && node.contains("type") && node["type"].is_string()
             ? node["type"].get<std::string>() : "";
}

// The items of a Sequence node (normalizers, pretokenizers, decoders, processors), else itself.
std::vector<const json*> flatten_all(const json& node, const char* list_key) {
  std::vector<const json*> out;
  if (node.is_null()) return out;
  if (type_of(node) == "Sequence" && node.contains(list_key)) {
    for (const json& child : node[list_key]) {
      auto sub = flatten_all(child, list_key);
      out.insert(out.end(), sub.begin(), sub.end());
    }
  } else {
    out.push_back(&node);
  }
  return out;
}

// Chained steps cost work on every encode: a file with thousands of them is refused.
constexpr size_t kMaxPipelineSteps = 64;
std::vector<const json*> flatten(const json& node, const char* list_key) {
  std::vector<const json*> out = flatten_all(node, list_key);
  if (out.size() > kMaxPipelineSteps)
    fail_input(std::string(list_key) + ": " + std::to_string(out.size()) + " chained steps, more than the limit of " +
               std::to_string(kMaxPipelineSteps));
  return out;
}

bool has_type(const json& node, const char* list_key, const char* type) {
  for (const json* n : flatten(node, list_key))
    if (type_of(*n) == type) return true;
  return false;
}

// A Split/Replace pattern: {"String": s} or {"Regex": r}. Returns the text; sets is_regex.
std::string pattern_of(const json& node, bool& is_regex) {
  const json& p = node.at("pattern");
  if (p.is_string()) {
    is_regex = false;
    return p.get<std::string>();
  }
  if (p.contains("Regex")) {
    is_regex = true;
    return p["Regex"].get<std::string>();
  }
  is_regex = false;
  return p.at("String").get<std::string>();
}

SplitBehavior behavior_of(const json& node) {
  const std::string b = node.value("behavior", std::string("Isolated"));
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  fail_input("unknown split behavior '" + b + "'");
}

Normalizer parse_normalizer(const json& node) {
  Normalizer out;
  for (const json* n : flatten(node, "normalizers")) {
    const std::string t = type_of(*n);
    if (t == "NFC") out.add_form(NormalForm::kNfc);
    else if (t == "NFD") out.add_form(NormalForm::kNfd);
    else if (t == "NFKC") out.add_form(NormalForm::kNfkc);
    else if (t == "NFKD") out.add_form(NormalForm::kNfkd);
    else if (t == "Lowercase") out.add_lowercase();
    else if (t == "Prepend") out.add_prepend(n->at("prepend").get<std::string>());
    else if (t == "Strip") out.add_strip(n->value("strip_left", true), n->value("strip_right", true));
    else if (t == "Replace") {
      bool is_regex = false;
      std::string pattern = pattern_of(*n, is_regex);
      std::string content = n->at("content").get<std::string>();
      if (is_regex) out.add_replace_regex(pattern, std::move(content));
      else out.add_replace(std::move(pattern), std::move(content));
    } else {
      fail_input("unsupported normalizer type '" + t + "'");
    }
  }
  return out;
}

PrependScheme prepend_scheme_of(const json& node) {
  if (node.contains("prepend_scheme") && node["prepend_scheme"].is_string()) {
    const std::string s = node["prepend_scheme"].get<std::string>();
    if (s == "always") return PrependScheme::kAlways;
    if (s == "first") return PrependScheme::kFirst;
    if (s == "never") return PrependScheme::kNever;
    fail_input("unknown Metaspace prepend_scheme '" + s + "'");
  }
  return node.value("add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

PreTokenizer parse_pre_tokenizer(const json& node) {
  PreTokenizer out;
  for (const json* n : flatten(node, "pretokenizers")) {
    const std::string t = type_of(*n);
    if (t == "ByteLevel") {
      out.add_byte_level(n->value("add_prefix_space", true), n->value("use_regex", true));
    } else if (t == "Split") {
      bool is_regex = false;
      std::string pattern = pattern_of(*n, is_regex);
      if (is_regex) out.add_split_regex(pattern, behavior_of(*n), n->value("invert", false));
      else out.add_split_string(std::move(pattern), behavior_of(*n), n->value("invert", false));
    } else if (t == "Digits") {
      out.add_digits(n->value("individual_digits", false));
    } else if (t == "Metaspace") {
      out.add_metaspace(n->value("replacement", std::string(kSpmSpace)), prepend_scheme_of(*n),
                        n->value("split", true));
    } else if (t == "WhitespaceSplit") {
      out.add_split_regex(R"(\s+)", SplitBehavior::kRemoved, false);
    } else if (t == "Whitespace") {
      out.add_split_regex(R"(\w+|[^\w\s]+)", SplitBehavior::kRemoved, true);
    } else if (t == "Punctuation") {
      out.add_split_regex(R"([\p{P}!-/:-@\[-`{-~])", behavior_of(*n), false);
    } else {
      fail_input("unsupported pre_tokenizer type '" + t + "'");
    }
  }
  return out;
}

std::vector<AddedToken> parse_added_tokens(const json& list, size_t n_vocab) {
  std::vector<AddedToken> out;
  if (!list.is_array()) return out;
  for (const json& a : list) {
    AddedToken t;
    const int64_t id = json_int(a.at("id"), 0, INT32_MAX, "added token id");
    check_vocab_id(id, n_vocab + list.size(), "added token");
    t.id = static_cast<int32_t>(id);
    t.content = a.at("content").get<std::string>();
    t.special = a.value("special", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.normalized = a.value("normalized", !t.special);
    t.single_word = a.value("single_word", false);
    out.push_back(std::move(t));
  }
  return out;
}

// BOS/EOS from TemplateProcessing (a special token before / after $A) or Roberta/Bert (cls, sep).
void parse_post_processor(const json& node, SpecialTokens& s) {
  for (const json* p : flatten(node, "processors")) {
    const std::string t = type_of(*p);
    if (t == "TemplateProcessing" && p->contains("single")) {
      bool seen_sequence = false;
      for (const json& item : (*p)["single"]) {
        if (item.contains("Sequence")) {
          seen_sequence = true;
          continue;
        }
        if (!item.contains("SpecialToken")) continue;
        const std::string name = item["SpecialToken"].at("id").get<std::string>();
        const json& ids = p->at("special_tokens").at(name).at("ids");
        if (ids.empty()) continue;
        const auto id = static_cast<int32_t>(json_int(ids[0], 0, INT32_MAX, "post_processor id"));
        if (seen_sequence) {
          s.eos = id;
          s.add_eos = true;
        } else {
          s.bos = id;
          s.add_bos = true;
        }
      }
    } else if (t == "RobertaProcessing" || t == "BertProcessing") {
      s.bos = static_cast<int32_t>(json_int(p->at("cls").at(1), 0, INT32_MAX, "post_processor cls id"));
      s.eos = static_cast<int32_t>(json_int(p->at("sep").at(1), 0, INT32_MAX, "post_processor sep id"));
      s.add_bos = s.add_eos = true;
    }
  }
}

std::vector<std::pair<std::string, std::string>> parse_merges(const json& list) {
  std::vector<std::pair<std::string, std::string>> out;
  if (list.is_null()) return out;
  out.reserve(list.size());
  for (const json& m : list) {
    if (m.is_array()) {
      if (m.size() != 2) fail_input("merge " + std::to_string(out.size() + 1) + " is not a pair");
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      continue;
    }
    const std::string& s = m.get_ref<const std::string&>();
    const size_t sp = s.find(' ');
    if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
      fail_input("merge " + std::to_string(out.size() + 1) + " '" + s + "' is not two tokens");
    out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
  }
  return out;
}

std::unique_ptr<BaseTokenizer> build(const json& doc) {
  const json& model = doc.at("model");
  const std::string mtype = model.value("type", std::string(model.contains("merges") ? "BPE" : ""));
  if (mtype != "BPE")
    fail_input("model type '" + mtype + "' is not supported (only BPE tokenizers are)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
      fail_input(std::string("BPE with ") + key + " is not supported");

  std::vector<std::string> vocab;
  const json& vocab_json = model.at("vocab");
  if (!vocab_json.is_object()) fail_input("model vocab is not an object of token: id");
  for (const auto& [token, id_json] : vocab_json.items()) {
    const int64_t id = json_int(id_json, 0, INT32_MAX, "vocab id of '" + token + "'");
    check_vocab_id(id, vocab_json.size(), "vocab token '" + token + "'");
    if (vocab.size() <= static_cast<size_t>(id)) vocab.resize(id + 1);
    vocab[id] = token;
  }
  auto merges = parse_merges(model.contains("merges") ? model["merges"] : json());
  int32_t unk = -1;
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const std::string u = model["unk_token"].get<std::string>();
    for (size_t i = 0; i < vocab.size(); ++i)
      if (vocab[i] == u) unk = static_cast<int32_t>(i);
  }
  const json null_json;
  const json& norm = doc.contains("normalizer") ? doc["normalizer"] : null_json;
  const json& pre = doc.contains("pre_tokenizer") ? doc["pre_tokenizer"] : null_json;
  const json& dec = doc.contains("decoder") ? doc["decoder"] : null_json;
  const bool byte_level =
      has_type(pre, "pretokenizers", "ByteLevel") || has_type(dec, "decoders", "ByteLevel");
  const bool byte_fallback = model.value("byte_fallback", false);

  std::unique_ptr<BaseTokenizer> tok;
  if (byte_level) {
    ByteLevelBpeModel m;
    m.vocab = std::move(vocab);
    m.merges = std::move(merges);
    m.ignore_merges = model.value("ignore_merges", false);
    m.unk = unk;
    tok = std::make_unique<ByteLevelBpeTokenizer>(std::move(m), parse_normalizer(norm),
                                                  parse_pre_tokenizer(pre));
    tok->set_kind("byte-level BPE (tokenizer.json)");
  } else {
    const bool spm_like = byte_fallback || has_type(pre, "pretokenizers", "Metaspace") ||
                          has_type(norm, "normalizers", "Prepend") ||
                          has_type(dec, "decoders", "Metaspace") ||
                          has_type(dec, "decoders", "ByteFallback");
    if (!spm_like)
      fail_input("BPE without a ByteLevel or SentencePiece-style (Metaspace, byte_fallback) "
                 "pre-tokenizer is not supported");
    SpmBpeModel m;
    m.pieces = std::move(vocab);
    m.merges = std::move(merges);
    m.byte_fallback = byte_fallback;
    m.unk = unk;
    m.fuse_unk = model.value("fuse_unk", false);
    m.strip_leading_space = false;
    for (const json* d : flatten(dec, "decoders")) {
      const std::string t = type_of(*d);
      if (t == "Strip" && d->value("start", 0) > 0 && d->value("content", std::string()) == " ")
        m.strip_leading_space = true;
      if (t == "Metaspace") {
        m.replacement = d->value("replacement", std::string(kSpmSpace));
        m.strip_leading_space = prepend_scheme_of(*d) != PrependScheme::kNever;
      }
    }
    for (const json* p : flatten(pre, "pretokenizers"))
      if (type_of(*p) == "Metaspace") m.replacement = p->value("replacement", std::string(kSpmSpace));
    if (m.merges.empty() && !m.pieces.empty())
      fail_input("a SentencePiece-style BPE model needs merges");
    tok = std::make_unique<SpmBpeTokenizer>(std::move(m), parse_normalizer(norm),
                                            parse_pre_tokenizer(pre));
    tok->set_kind("SentencePiece-style BPE (tokenizer.json)");
  }
  tok->add_tokens(parse_added_tokens(doc.contains("added_tokens") ? doc["added_tokens"] : json(),
                                     static_cast<size_t>(tok->vocab_size())));
  SpecialTokens& s = tok->special();
  s.unk = unk;
  if (doc.contains("post_processor")) parse_post_processor(doc["post_processor"], s);
  return tok;
}

}  // namespace

std::unique_ptr<BaseTokenizer> read_tokenizer_json(const std::string& path) {
  const json doc = read_json_file(path);
  try {
    if (!doc.is_object()) fail_input("the top level is not a JSON object");
    return build(doc);
  } catch (const json::exception& e) {
    fail_input(path + ": unexpected structure: " + e.what());
  } catch (const InputError& e) {
    fail_input(path + ": " + e.what());
  }
}

}  // namespace ms
