// The text stages before a BPE model sees its words, as Hugging Face tokenizers defines them:
// normalizers (NFC, Replace, Prepend, ...) and pre-tokenizers (ByteLevel, Split with an
// Oniguruma regex, Digits, Metaspace). Private to core's tokenizers.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tokenizer/unicode.h"

struct re_pattern_buffer;  // Oniguruma's regex_t, kept out of this header

namespace ms {

// GPT-2's pre-tokenizer pattern (also GPT-NeoX, Pythia, MPT, ByteLevel use_regex true).
extern const char* const kGpt2Pattern;
// Llama 3's and Qwen2's Split patterns (the latter isolates single digits).
extern const char* const kLlama3Pattern;
extern const char* const kQwen2Pattern;

// A compiled Oniguruma pattern: UTF-8, Ruby syntax (what Hugging Face tokenizers compiles with).
class Regex {
 public:
  explicit Regex(const std::string& pattern);  // throws InputError naming the pattern
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Non-empty, non-overlapping matches left to right, as [begin, end) byte offsets.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  re_pattern_buffer* m_reg = nullptr;
};

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };
enum class PrependScheme { kNever, kFirst, kAlways };

// A chain of text-to-text steps, applied in order.
class Normalizer {
 public:
  void add_form(NormalForm form);
  void add_lowercase();
  void add_replace(std::string from, std::string to);          // literal
  void add_replace_regex(const std::string& pattern, std::string to);
  void add_prepend(std::string prefix);                         // not to empty text
  void add_strip(bool left, bool right);                        // Unicode whitespace
  bool empty() const { return m_steps.empty(); }
  std::string run(std::string_view text) const;

 private:
  enum class Kind { kForm, kLowercase, kReplace, kReplaceRegex, kPrepend, kStrip };
  struct Step {
    Kind kind = Kind::kForm;
    NormalForm form = NormalForm::kNfc;
    std::string a, b;  // from/to, or the prefix
    bool left = false, right = false;
    std::shared_ptr<Regex> regex;
  };
  Step& push(Kind kind);
  std::vector<Step> m_steps;
};

// A chain of splitting steps; each step splits every piece the previous steps produced.
class PreTokenizer {
 public:
  void add_split_regex(const std::string& pattern, SplitBehavior behavior, bool invert);
  void add_split_string(std::string literal, SplitBehavior behavior, bool invert);
  // Prepends a space to each piece not starting with one (add_prefix_space), then splits with
  // kGpt2Pattern (use_regex). The byte-to-unicode mapping itself is the BPE model's business.
  void add_byte_level(bool add_prefix_space, bool use_regex);
  void add_digits(bool individual);
  // Replaces ' ' by `replacement`, prepends it per scheme, and splits before each one if split.
  void add_metaspace(std::string replacement, PrependScheme scheme, bool split);
  bool empty() const { return m_steps.empty(); }
  bool has_metaspace() const;

  // Splits one text fragment into words. at_start: the fragment begins the input (for "first").
  void run(std::string_view text, bool at_start, std::vector<std::string>& words) const;

 private:
  enum class Kind { kSplit, kByteLevel, kMetaspace };
  struct Step {
    Kind kind = Kind::kSplit;
    std::shared_ptr<Regex> regex;  // kSplit by pattern, kByteLevel with use_regex
    std::string literal;           // kSplit by string; kMetaspace replacement
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool flag = false;  // kByteLevel add_prefix_space; kMetaspace split
    PrependScheme scheme = PrependScheme::kAlways;
  };
  struct Piece {
    std::string text;
    bool at_start;
  };
  void apply(const Step& step, Piece piece, std::vector<Piece>& out) const;
  std::vector<Step> m_steps;
};

}  // namespace ms
