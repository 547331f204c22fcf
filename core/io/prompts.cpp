// Reading prompt sets (.txt, .jsonl).
#include "core/io/prompts.h"

#include <fstream>
#include <nlohmann/json.hpp>

namespace ms {

Result<std::vector<PromptRecord>> read_prompts(const std::string& path) {
  return guard([&] {
    std::ifstream in(path);
    if (!in) fail_input(path + ": cannot read the file");
    const bool jsonl = path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
    std::vector<PromptRecord> out;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      PromptRecord r;
      if (!jsonl) {
        r.text = line;
        out.push_back(std::move(r));
        continue;
      }
      const std::string where = path + ":" + std::to_string(n);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        fail_input(where + ": malformed JSON: " + e.what());
      }
      if (!j.is_object()) fail_input(where + ": expected a JSON object");
      auto text_field = [&](const char* key) -> std::string {
        if (!j.contains(key)) return "";
        if (!j[key].is_string()) fail_input(where + ": '" + key + "' must be a string");
        return j[key].get<std::string>();
      };
      r.text = j.contains("text") ? text_field("text") : text_field("prompt");
      if (j.contains("tokens")) {
        if (!j["tokens"].is_array() || j["tokens"].empty())
          fail_input(where + ": 'tokens' must be a non-empty list of token ids");
        for (const auto& t : j["tokens"]) {
          if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
            fail_input(where + ": 'tokens' must be a non-empty list of token ids");
          r.tokens.push_back(t.get<int32_t>());
        }
      }
      if (r.text.empty() && r.tokens.empty())
        fail_input(where + ": needs a non-empty \"text\" (or \"prompt\", or \"tokens\")");
      r.continuation = text_field("continuation");
      if (j.contains("choices")) {
        if (!j["choices"].is_array() || j["choices"].empty())
          fail_input(where + ": 'choices' must be a non-empty list of strings");
        for (const auto& c : j["choices"]) {
          if (!c.is_string()) fail_input(where + ": 'choices' must be a non-empty list of strings");
          r.choices.push_back(c.get<std::string>());
        }
        if (!j.contains("answer") || !j["answer"].is_number_integer())
          fail_input(where + ": 'choices' needs an integer 'answer' index");
        r.answer = j["answer"].get<int>();
        if (r.answer < 0 || r.answer >= static_cast<int>(r.choices.size()))
          fail_input(where + ": 'answer' " + std::to_string(r.answer) + " is not an index into 'choices'");
      }
      out.push_back(std::move(r));
    }
    if (out.empty()) fail_input(path + ": no prompts in the file");
    return out;
  });
}

}  // namespace ms
