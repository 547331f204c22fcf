// Task parameters, the task they make, and its stored inputs (moved from the CLI and the batch
// adapters, which each had a copy).
#include "runs/task_run.h"

#include <ATen/ATen.h>

#include "runs/run_inputs.h"

namespace ms {

std::vector<ParamDecl> task_param_decls() {
  ParamDecl task{"task", ParamType::kChoice, "ioi", true, "ioi, induction, greater-than or custom"};
  task.choices = {"ioi", "induction", "greater-than", "custom"};
  ParamDecl file{"task_file", ParamType::kPath, "", false, "custom: .csv or .jsonl with clean, corrupted, answer, distractor"};
  ParamDecl n{"n", ParamType::kInt, 32, true, "prompt pairs to generate"};
  n.lo = 1;
  ParamDecl seed{"seed", ParamType::kInt, 0, true, "generator seed"};
  seed.lo = 0;
  ParamDecl seq_len{"seq_len", ParamType::kInt, 8, true, "induction: tokens in each half"};
  seq_len.lo = 2;
  ParamDecl vocab{"vocab_range", ParamType::kString, "", false, "induction: token ids LO:HI to draw from (\"\": the whole vocabulary)"};
  ParamDecl bos{"bos", ParamType::kBool, true, false, "prepend BOS"};
  bos.flag = "--no-bos";  // on the command line: the flag turns it off
  return {task, file, n, seed, seq_len, vocab, bos};
}

bool parse_vocab_range(const std::string& s, int32_t* lo, int32_t* hi) {
  size_t colon = s.find(':');
  if (colon == std::string::npos) return false;
  try {
    size_t u1 = 0, u2 = 0;
    *lo = std::stoi(s.substr(0, colon), &u1);
    *hi = std::stoi(s.substr(colon + 1), &u2);
    return u1 == colon && u2 == s.size() - colon - 1;
  } catch (const std::logic_error&) {
    return false;
  }
}

std::string check_task_params(const nlohmann::json& p, const ModelConfig& c, std::string* param) {
  auto fail = [param](const std::string& name, const std::string& msg) {
    *param = name;
    return msg;
  };
  const std::string task = p["task"].get<std::string>();
  if (task == "custom" && p["task_file"].get<std::string>().empty())
    return fail("task", "task custom needs task_file (a .csv or .jsonl file)");
  const int64_t half = p["seq_len"].get<int64_t>();
  const std::string vr = p["vocab_range"].get<std::string>();
  if (!vr.empty()) {
    int32_t lo = 0, hi = 0;
    if (!parse_vocab_range(vr, &lo, &hi)) return fail("vocab_range", "vocab_range '" + vr + "': expected LO:HI");
    if (lo < 0 || hi > c.d_vocab || hi - lo < 2 * half + 1)
      return fail("vocab_range", "vocab_range " + vr + " is too small for seq_len " + std::to_string(half) +
                                     " or outside the vocabulary of " + std::to_string(c.d_vocab));
  }
  if (task == "induction" && c.pos == PosKind::kLearned && 2 * half > c.n_ctx)
    return fail("seq_len", "seq_len " + std::to_string(half) + ": induction prompts of " + std::to_string(2 * half) +
                               " tokens exceed the model's " + std::to_string(c.n_ctx) + " positions");
  return "";
}

TaskPairs make_param_task(const Model& m, const nlohmann::json& p) {
  TaskOptions to;
  to.name = p["task"].get<std::string>();
  if (to.name == "custom") to.file = p["task_file"].get<std::string>();  // ignored by the other tasks
  to.n = p["n"].get<int64_t>();
  to.seed = static_cast<uint64_t>(p["seed"].get<int64_t>());
  to.half_len = p["seq_len"].get<int64_t>();
  to.bos = p["bos"].get<bool>();
  if (to.name == "induction" && to.bos && !m.tokenizer()) to.bos_id = m.config().bos_token_id;
  const std::string vr = p["vocab_range"].get<std::string>();
  if (!vr.empty() && !parse_vocab_range(vr, &to.vocab_lo, &to.vocab_hi)) fail_usage("vocab_range '" + vr + "': expected LO:HI");
  Result<TaskPairs> t = make_task(to, m.tokenizer(), m.config().d_vocab);
  if (!t) throw InputError(t.error().message, t.error().code);
  if (t->seq_len() > m.config().n_ctx && m.config().pos == PosKind::kLearned)
    fail_input(to.name + ": prompts of " + std::to_string(t->seq_len()) + " tokens exceed the model's " +
               std::to_string(m.config().n_ctx) + " positions");
  return std::move(*t);
}

nlohmann::json task_counts(const TaskPairs& t) {
  return {{"n_pairs", t.n()}, {"survived", t.n_kept}, {"generated", t.n_candidates}};
}

std::vector<std::string> first_prompt_labels(const Model& m, const TaskPairs& t) {
  std::vector<std::string> out;
  for (int64_t j = 0; j < t.seq_len(); ++j) out.push_back(token_label(m, static_cast<int32_t>(t.clean[0][j].item<int64_t>())));
  return out;
}

void add_task_results(const Model& m, const TaskPairs& t, RunResults& res) {
  for (int64_t i = 0; i < t.n(); ++i) {
    InputRecord in;
    in.index = static_cast<int>(i);
    in.text = i < static_cast<int64_t>(t.clean_text.size()) ? t.clean_text[static_cast<size_t>(i)] : "";
    for (int64_t j = 0; j <= t.answer_pos[static_cast<size_t>(i)]; ++j) {
      int32_t id = static_cast<int32_t>(t.clean[i][j].item<int64_t>());
      in.token_ids.push_back(id);
      in.tokens.push_back(token_label(m, id));
    }
    res.inputs.push_back(std::move(in));
  }
  res.tensors.push_back({"clean_tokens", t.clean, R"({"kind":"tokens","axes":["pair","position"]})"});
  res.tensors.push_back({"corrupted_tokens", t.corrupted, R"({"kind":"tokens","axes":["pair","position"]})"});
}

}  // namespace ms
