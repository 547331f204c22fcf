// JSON from untrusted files: parsing with a nesting-depth limit (deep nesting would overflow the
// stack of every recursive walk: dump, copy, compare) and optional refusal of duplicate keys, and
// strict integer reading (no floats, no wrapping: 4294967297 never becomes 1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ms {

// Deepest nesting of arrays/objects accepted in an input file. Real configs and tokenizers nest
// fewer than 10 levels.
constexpr int kMaxJsonDepth = 64;

struct JsonParseOptions {
  int max_depth = kMaxJsonDepth;
  bool reject_duplicate_keys = false;  // e.g. two tensors of the same name in a safetensors header
};

// Parses text; throws InputError "<where>: not valid JSON: ..." for a syntax error, a number out of
// range (1e999), nesting deeper than max_depth (the message names the limit) or a duplicate key.
nlohmann::json parse_json_input(std::string_view text, const std::string& where,
                                const JsonParseOptions& opts = {});

// As parse_json_input, but returns a discarded value (is_discarded()) instead of throwing: for
// JSON this program wrote itself and reads back from a database that may have been tampered with.
nlohmann::json parse_json_or_discarded(std::string_view text, int max_depth = kMaxJsonDepth);

// A JSON integer (signed or unsigned, never a float) within [lo, hi]; false otherwise.
bool json_int_in(const nlohmann::json& v, int64_t lo, int64_t hi, int64_t* out);

// The same, throwing InputError "<what> must be an integer from lo to hi, got <v>" otherwise.
int64_t json_int(const nlohmann::json& v, int64_t lo, int64_t hi, const std::string& what);

// A short rendering of a value for messages (at most ~80 characters; never recursive beyond the
// depth limit because values come from parse_json_input).
std::string json_brief(const nlohmann::json& v);

}  // namespace ms
