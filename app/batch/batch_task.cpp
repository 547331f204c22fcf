// The task parameters of the batch patch and circuit adapters: specs, checks with the parameter
// each error is about (for the job file's line number), the task itself and size bounds.
#include "app/batch/batch_task.h"

#include <algorithm>
#include <fstream>

#include "app/commands/circuit_common.h"

namespace ms::app::batch {

Analysis task_analysis(const std::string& kind, const std::string& summary, const std::vector<ParamSpec>& own) {
  Analysis a;
  a.kind = kind;
  a.summary = summary;
  a.params = {
      {"task", ParamType::kString, "ioi", true, "ioi, induction, greater-than or custom"},
      {"task_file", ParamType::kPath, "", false, "custom: .csv or .jsonl with clean, corrupted, answer, distractor"},
      {"n", ParamType::kInt, 32, true, "prompt pairs to generate"},
      {"seed", ParamType::kInt, 0, true, "generator seed"},
      {"seq_len", ParamType::kInt, 8, true, "induction: tokens in each half"},
      {"vocab_range", ParamType::kString, "", false, "induction: token ids LO:HI to draw from (\"\": the whole vocabulary)"},
      {"bos", ParamType::kBool, true, false, "prepend BOS (false: as --no-bos)"},
  };
  a.params.insert(a.params.end(), own.begin(), own.end());
  return a;
}

std::string check_task_params(const nlohmann::json& p, const ModelConfig& c, std::string* param) {
  auto fail = [param](const std::string& name, const std::string& msg) {
    *param = name;
    return msg;
  };
  const std::string task = p["task"].get<std::string>();
  if (task != "ioi" && task != "induction" && task != "greater-than" && task != "custom")
    return fail("task", "task '" + task + "': expected ioi, induction, greater-than or custom");
  if (task == "custom" && p["task_file"].get<std::string>().empty())
    return fail("task", "task custom needs task_file (a .csv or .jsonl file)");
  if (p["n"].get<int64_t>() < 1) return fail("n", "n must be at least 1");
  if (p["seed"].get<int64_t>() < 0) return fail("seed", "seed must not be negative");
  const int64_t half = p["seq_len"].get<int64_t>();
  if (half < 2) return fail("seq_len", "seq_len must be at least 2");
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

TaskPairs make_item_task(const Model& m, const nlohmann::json& p) {
  TaskCliOptions o;
  o.task = p["task"].get<std::string>();
  if (o.task == "custom") o.task_file = p["task_file"].get<std::string>();  // ignored by the other tasks
  o.n = p["n"].get<int64_t>();
  o.seed = static_cast<uint64_t>(p["seed"].get<int64_t>());
  o.seq_len = p["seq_len"].get<int64_t>();
  o.vocab_range = p["vocab_range"].get<std::string>();
  o.no_bos = !p["bos"].get<bool>();
  return make_cli_task(m, o, true);
}

ItemOutput task_item_output(const TaskPairs& task, RunResults results) {
  ItemOutput out;
  out.results = std::move(results);
  out.params = {{"n_pairs", task.n()}, {"survived", task.n_kept}, {"generated", task.n_candidates}};
  return out;
}

TaskSize task_size_bound(const nlohmann::json& p, const ModelConfig& c) {
  TaskSize t;
  const std::string task = p["task"].get<std::string>();
  t.pairs = p["n"].get<int64_t>();
  if (task == "induction") {
    t.tokens = 2 * p["seq_len"].get<int64_t>();
  } else if (task == "ioi") {
    t.tokens = 96;  // the longest template, one token per byte
  } else if (task == "greater-than") {
    t.tokens = 64;
  } else {  // custom: a row per line, at most a token per byte
    std::ifstream in(p["task_file"].get<std::string>(), std::ios::binary);
    std::string line;
    t.pairs = 0;
    while (std::getline(in, line))
      if (!line.empty()) ++t.pairs, t.tokens = std::max<int64_t>(t.tokens, static_cast<int64_t>(line.size()) + 2);
  }
  t.tokens = std::max<int64_t>(1, std::min(t.tokens, c.n_ctx));
  t.pairs = std::max<int64_t>(1, t.pairs);
  return t;
}

double task_forward_bytes(const TaskSize& t, const ModelConfig& c) {
  return static_cast<double>(t.pairs) * forward_activation_bytes(c, t.tokens);
}

double task_forward_flops(const TaskSize& t, const ItemShape& s) {
  return static_cast<double>(t.pairs) * forward_flops(*s.config, s.n_params, t.tokens);
}

}  // namespace ms::app::batch
