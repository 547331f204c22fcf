// Reading prompt sets (.txt, .jsonl).
#include "core/io/prompts.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/base/json_input.h"

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
      const nlohmann::json j = parse_json_input(line, where);
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
          int64_t id = 0;
          if (!json_int_in(t, 0, INT32_MAX, &id))
            fail_input(where + ": 'tokens' must be a non-empty list of token ids");
          r.tokens.push_back(static_cast<int32_t>(id));
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
        int64_t answer = -1;
        if (!json_int_in(j["answer"], 0, static_cast<int64_t>(r.choices.size()) - 1, &answer))
          fail_input(where + ": 'answer' " + json_brief(j["answer"]) + " is not an index into 'choices'");
        r.answer = static_cast<int>(answer);
      }
      out.push_back(std::move(r));
    }
    if (out.empty()) fail_input(path + ": no prompts in the file");
    return out;
  });
}

}  // namespace ms
