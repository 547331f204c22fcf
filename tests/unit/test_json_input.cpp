// parse_json_input / json_int: the depth limit is exact (64 levels pass, 65 do not), duplicate
// keys are refused where asked, numbers out of range are bad input, integers are never truncated.
#include <gtest/gtest.h>

#include "core/base/json_input.h"
#include "core/base/result.h"

using namespace ms;

namespace {
std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string error_of(const std::string& text, const JsonParseOptions& opts = {}) {
  try {
    parse_json_input(text, "f.json", opts);
  } catch (const InputError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadInput);
    return e.what();
  }
  return "";
}
}  // namespace

TEST(JsonInput, DepthLimitIsExact) {
  EXPECT_EQ(error_of(nested(kMaxJsonDepth)), "");
  EXPECT_EQ(error_of("{\"a\": " + nested(kMaxJsonDepth - 1) + "}"), "");
  EXPECT_NE(error_of(nested(kMaxJsonDepth + 1)).find("f.json: values nested deeper than 64 levels"), std::string::npos);
  EXPECT_NE(error_of("{\"a\": " + nested(kMaxJsonDepth) + "}").find("nested deeper"), std::string::npos);
  // Far deeper than any stack: refused while parsing, before a recursive walk could overflow.
  EXPECT_NE(error_of(nested(1000000)).find("nested deeper"), std::string::npos);
  EXPECT_TRUE(parse_json_or_discarded(nested(100000)).is_discarded());
  EXPECT_FALSE(parse_json_or_discarded(nested(10)).is_discarded());
}

TEST(JsonInput, DuplicateKeysAndBadNumbers) {
  JsonParseOptions strict;
  strict.reject_duplicate_keys = true;
  EXPECT_NE(error_of(R"({"a": 1, "b": {"a": 2}, "a": 3})", strict).find("the key 'a' appears twice"), std::string::npos);
  EXPECT_EQ(error_of(R"({"a": 1, "b": {"a": 2}})", strict), "");  // the same key in another object is fine
  EXPECT_EQ(error_of(R"({"a": 1, "a": 3})"), "");                  // allowed unless asked
  EXPECT_NE(error_of(R"({"x": 1e999})").find("out of range"), std::string::npos);
  EXPECT_NE(error_of(R"({"x": )").find("not valid JSON"), std::string::npos);
}

TEST(JsonInput, IntegersAreCheckedNotTruncated) {
  int64_t v = 0;
  EXPECT_FALSE(json_int_in(nlohmann::json::parse("4294967297"), 0, INT32_MAX, &v));
  EXPECT_FALSE(json_int_in(nlohmann::json::parse("18446744073709551615"), INT64_MIN, INT64_MAX, &v));
  EXPECT_FALSE(json_int_in(nlohmann::json::parse("3.0"), 0, 10, &v));
  EXPECT_FALSE(json_int_in(nlohmann::json::parse("\"3\""), 0, 10, &v));
  EXPECT_TRUE(json_int_in(nlohmann::json::parse("9223372036854775807"), 0, INT64_MAX, &v));
  EXPECT_EQ(v, INT64_MAX);
  EXPECT_TRUE(json_int_in(nlohmann::json::parse("-5"), -10, 10, &v));
  EXPECT_EQ(v, -5);
  try {
    json_int(nlohmann::json::parse("4294967297"), 0, INT32_MAX, "field 'bos_token_id'");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "field 'bos_token_id' must be an integer from 0 to 2147483647, got 4294967297");
  }
}
