// Parsing JSON from input files with a depth limit and duplicate-key check (nlohmann's parser
// callback sees every nesting level), and strict integer reading.
#include "core/base/json_input.h"

#include <vector>
#include <set>

#include "core/base/result.h"

namespace ms {
namespace {

using json = nlohmann::json;

// Why the callback stopped the parse (it throws this; parse_json_input turns it into a message).
struct StructureError {
  std::string what;
};

json parse_checked(std::string_view text, const JsonParseOptions& opts) {
  std::vector<std::set<std::string>> keys;  // per open object, when checking duplicates
  std::vector<bool> is_object;              // per open container
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) -> bool {
    switch (ev) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= opts.max_depth)
          throw StructureError{"values nested deeper than " + std::to_string(opts.max_depth) +
                               " levels (the limit)"};
        is_object.push_back(ev == json::parse_event_t::object_start);
        if (opts.reject_duplicate_keys && is_object.back()) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (opts.reject_duplicate_keys && !is_object.empty() && is_object.back()) keys.pop_back();
        if (!is_object.empty()) is_object.pop_back();
        break;
      case json::parse_event_t::key:
        if (opts.reject_duplicate_keys && !keys.empty() &&
            !keys.back().insert(parsed.get<std::string>()).second)
          throw StructureError{"the key '" + parsed.get<std::string>() + "' appears twice"};
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  return json::parse(text.begin(), text.end(), cb);
}

}  // namespace

json parse_json_input(std::string_view text, const std::string& where, const JsonParseOptions& opts) {
  try {
    return parse_checked(text, opts);
  } catch (const StructureError& e) {
    fail_input(where + ": " + e.what);
  } catch (const json::out_of_range& e) {
    fail_input(where + ": not valid JSON: a number is out of range (" + e.what() + ")");
  } catch (const json::exception& e) {
    fail_input(where + ": not valid JSON: " + e.what());
  }
}

json parse_json_or_discarded(std::string_view text, int max_depth) {
  try {
    JsonParseOptions opts;
    opts.max_depth = max_depth;
    return parse_checked(text, opts);
  } catch (const StructureError&) {
  } catch (const json::exception&) {
  }
  return json(json::value_t::discarded);
}

bool json_int_in(const json& v, int64_t lo, int64_t hi, int64_t* out) {
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return false;
    x = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else {
    return false;
  }
  if (x < lo || x > hi) return false;
  *out = x;
  return true;
}

int64_t json_int(const json& v, int64_t lo, int64_t hi, const std::string& what) {
  int64_t x = 0;
  if (!json_int_in(v, lo, hi, &x))
    fail_input(what + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
               ", got " + json_brief(v));
  return x;
}

std::string json_brief(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

}  // namespace ms
