// Custom circuit tasks from a file: CSV (header clean,corrupted,answer,distractor) or JSONL
// objects with those keys. A field is text, or token ids (JSON arrays / integers; in CSV written
// as "[1, 2, 3]"). Clean and corrupted must have the same number of tokens.
#include <ATen/ATen.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/analysis/circuits/circuit_task.h"
#include "core/base/json_input.h"
#include "core/tokenizer/tokenizer.h"

namespace ms {
namespace {

// Rows are padded to the longest prompt: at most this many token cells (two int64 tensors of it).
constexpr int64_t kMaxTaskCells = int64_t{1} << 24;

struct Field {
  std::string text;
  std::vector<int32_t> ids;
  bool is_ids = false;
};

// Splits one CSV record (RFC 4180 quoting; no embedded newlines).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') out.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else out.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  return out;
}

// A token id as written: an integer 0..2^31-1, never truncated (4294967297 is not 1).
int32_t token_id(const nlohmann::json& v, const std::string& where) {
  int64_t id = 0;
  if (!json_int_in(v, 0, INT32_MAX, &id))
    fail_input(where + ": " + json_brief(v) + " is not a token id (an integer from 0 to 2^31-1)");
  return static_cast<int32_t>(id);
}

Field csv_field(const std::string& s, const std::string& where) {
  Field f;
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
    f.is_ids = true;
    const nlohmann::json list = parse_json_or_discarded(s);
    if (!list.is_array()) fail_input(where + ": '" + s + "' is not a list of token ids");
    for (const auto& v : list) f.ids.push_back(token_id(v, where));
  } else {
    f.text = s;
  }
  return f;
}

Field json_field(const nlohmann::json& v, const std::string& where) {
  Field f;
  if (v.is_string()) {
    f.text = v.get<std::string>();
  } else if (v.is_number_integer()) {
    f.is_ids = true;
    f.ids.push_back(token_id(v, where));
  } else if (v.is_array()) {
    f.is_ids = true;
    for (const auto& x : v) {
      if (!x.is_number_integer()) fail_input(where + ": token id lists must hold integers");
      f.ids.push_back(token_id(x, where));
    }
  } else {
    fail_input(where + ": expected a string or token ids");
  }
  return f;
}

std::vector<int32_t> tokens_of(const Field& f, const Tokenizer* tok, bool prompt, bool bos, const std::string& where) {
  if (f.is_ids) return f.ids;
  if (!tok) fail_input(where + ": text given but the model has no tokenizer; give token ids instead");
  std::vector<int32_t> ids = tok->encode(f.text, false, false);
  if (prompt && bos && tok->special().bos >= 0) ids.insert(ids.begin(), tok->special().bos);
  return ids;
}

}  // namespace

namespace {
Result<TaskPairs> read_custom_task_impl(const std::string& path, const Tokenizer* tok, int64_t d_vocab, bool bos) {
  if (path.empty()) return Error{ErrorCode::kUsage, "task custom needs --task-file FILE.csv|FILE.jsonl"};
  std::ifstream in(path);
  if (!in) return Error{ErrorCode::kBadInput, path + ": cannot open the task file"};
  const bool csv = path.size() >= 4 && path.substr(path.size() - 4) == ".csv";
  const bool jsonl = path.size() >= 6 && path.substr(path.size() - 6) == ".jsonl";
  if (!csv && !jsonl) return Error{ErrorCode::kUsage, path + ": a custom task file must end in .csv or .jsonl"};
  TaskPairs t;
  t.name = "custom";
  std::vector<std::vector<int32_t>> clean, corrupted;
  std::string line;
  int lineno = 0;
  std::vector<std::string> header;
  const char* keys[] = {"clean", "corrupted", "answer", "distractor"};
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + " line " + std::to_string(lineno);
    Field f[4];
    if (csv) {
      std::vector<std::string> cells = split_csv(line);
      if (header.empty()) {
        header = cells;
        for (const char* k : keys)
          if (std::find(header.begin(), header.end(), k) == header.end())
            return Error{ErrorCode::kBadInput, path + ": the header needs the columns clean, corrupted, answer, distractor"};
        continue;
      }
      if (cells.size() != header.size())
        return Error{ErrorCode::kBadInput, where + ": " + std::to_string(cells.size()) + " fields, the header has " +
                                               std::to_string(header.size())};
      for (int k = 0; k < 4; ++k) {
        size_t col = static_cast<size_t>(std::find(header.begin(), header.end(), keys[k]) - header.begin());
        f[k] = csv_field(cells[col], where);
      }
    } else {
      nlohmann::json j;
      try {
        j = parse_json_input(line, where);
      } catch (const InputError& e) {
        return Error{ErrorCode::kBadInput, e.what()};
      }
      for (int k = 0; k < 4; ++k) {
        if (!j.is_object() || !j.contains(keys[k]))
          return Error{ErrorCode::kBadInput, where + ": missing \"" + keys[k] + "\""};
        f[k] = json_field(j[keys[k]], where + " \"" + keys[k] + "\"");
      }
    }
    ++t.n_candidates;
    std::vector<int32_t> c = tokens_of(f[0], tok, true, bos, where), x = tokens_of(f[1], tok, true, bos, where);
    std::vector<int32_t> a = tokens_of(f[2], tok, false, bos, where), d = tokens_of(f[3], tok, false, bos, where);
    if (c.empty()) return Error{ErrorCode::kBadInput, where + ": the clean prompt is empty"};
    if (c.size() != x.size())
      return Error{ErrorCode::kBadInput, where + ": clean has " + std::to_string(c.size()) + " tokens, corrupted " +
                                             std::to_string(x.size()) + "; they must be the same length"};
    if (a.size() != 1 || d.size() != 1)
      return Error{ErrorCode::kBadInput, where + ": answer and distractor must be single tokens (got " +
                                             std::to_string(a.size()) + " and " + std::to_string(d.size()) + ")"};
    for (const auto* v : {&c, &x, &a, &d})
      for (int32_t id : *v)
        if (id < 0 || id >= d_vocab)
          return Error{ErrorCode::kBadInput, where + ": token id " + std::to_string(id) +
                                                 " is outside the vocabulary of " + std::to_string(d_vocab)};
    t.answer.push_back(a[0]);
    t.distractor.push_back(d[0]);
    t.answer_pos.push_back(static_cast<int64_t>(c.size()) - 1);
    t.clean_text.push_back(f[0].text);
    t.corrupted_text.push_back(f[1].text);
    clean.push_back(std::move(c));
    corrupted.push_back(std::move(x));
  }
  if (clean.empty()) return Error{ErrorCode::kBadInput, path + ": no prompt pairs"};
  t.n_kept = static_cast<int64_t>(clean.size());
  size_t T = 0;
  for (const auto& c : clean) T = std::max(T, c.size());
  const int64_t N = static_cast<int64_t>(clean.size());
  // Rows are padded to the longest: a file of many rows and one very long one is refused.
  if (static_cast<double>(N) * static_cast<double>(T) > static_cast<double>(kMaxTaskCells))
    return Error{ErrorCode::kBadInput, path + ": " + std::to_string(N) + " prompt pairs padded to " + std::to_string(T) +
                                           " tokens exceed the limit of " + std::to_string(kMaxTaskCells) +
                                           " token cells; split the file or shorten the longest prompt"};
  t.clean = at::zeros({N, static_cast<int64_t>(T)}, at::kLong);
  t.corrupted = t.clean.clone();
  auto ca = t.clean.accessor<int64_t, 2>();
  auto xa = t.corrupted.accessor<int64_t, 2>();
  for (int64_t i = 0; i < N; ++i)
    for (size_t j = 0; j < clean[i].size(); ++j) {
      ca[i][static_cast<int64_t>(j)] = clean[i][j];
      xa[i][static_cast<int64_t>(j)] = corrupted[i][j];
    }
  return t;
}

}  // namespace

Result<TaskPairs> read_custom_task(const std::string& path, const Tokenizer* tok, int64_t d_vocab, bool bos) {
  Result<Result<TaskPairs>> r = guard([&] { return read_custom_task_impl(path, tok, d_vocab, bos); });
  if (!r) return r.error();
  return std::move(r.value());
}

}  // namespace ms
