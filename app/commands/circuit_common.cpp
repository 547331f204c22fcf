// Task options and run bookkeeping shared by the patching and circuit commands.
#include "app/commands/circuit_common.h"

#include <ATen/ATen.h>

#include <csignal>
#include <iostream>

namespace ms::app {
namespace {
std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }
void (*g_old_handler)(int) = nullptr;
}  // namespace

void add_task_options(CLI::App& cmd, TaskCliOptions& o) {
  cmd.add_option("--task", o.task, "ioi, induction, greater-than or custom")->capture_default_str();
  cmd.add_option("--task-file", o.task_file, "custom task: .csv or .jsonl with clean, corrupted, answer, distractor");
  cmd.add_option("--n", o.n, "prompt pairs to generate")->capture_default_str();
  cmd.add_option("--seed", o.seed, "generator seed")->capture_default_str();
  cmd.add_option("--seq-len", o.seq_len, "induction: tokens in each half")->capture_default_str();
  cmd.add_option("--vocab-range", o.vocab_range, "induction: token ids LO:HI to draw from (default: the whole vocabulary)");
  cmd.add_flag("--no-bos", o.no_bos, "do not prepend BOS");
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

TaskPairs make_cli_task(const Model& m, const TaskCliOptions& o, bool quiet) {
  TaskOptions to;
  to.name = o.task;
  to.file = o.task_file;
  to.n = o.n;
  to.seed = o.seed;
  to.half_len = o.seq_len;
  to.bos = !o.no_bos;
  if (o.task == "induction" && !o.no_bos && !m.tokenizer()) to.bos_id = m.config().bos_token_id;
  if (!o.task_file.empty() && o.task != "custom") fail_usage("--task-file is for --task custom");
  if (!o.vocab_range.empty() && !parse_vocab_range(o.vocab_range, &to.vocab_lo, &to.vocab_hi))
    fail_usage("--vocab-range '" + o.vocab_range + "': expected LO:HI");
  Result<TaskPairs> t = make_task(to, m.tokenizer(), m.config().d_vocab);
  if (!t) throw InputError(t.error().message, t.error().code);
  if (!quiet && t->n_candidates != t->n_kept)
    std::cerr << o.task << ": " << t->n_kept << " of " << t->n_candidates
              << " generated prompts survived the single-token filter\n";
  if (t->seq_len() > m.config().n_ctx && m.config().pos == PosKind::kLearned)
    fail_input(o.task + ": prompts of " + std::to_string(t->seq_len()) + " tokens exceed the model's " +
               std::to_string(m.config().n_ctx) + " positions");
  return std::move(*t);
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

int64_t begin_cli_run(Database& db, const Model& m, const std::string& kind, const std::string& params_json) {
  Result<int64_t> model_id = db.register_model(m);
  if (!model_id) throw InputError(model_id.error().message, model_id.error().code);
  RunSpec spec(kind, *model_id, params_json);
  spec.command = shell_join(command_line());
  Result<int64_t> run = db.begin_run(spec);
  if (!run) throw InputError(run.error().message, run.error().code);
  return *run;
}

void throw_if_failed(const Status& s) {
  if (!s) throw InputError(s.error().message, s.error().code);
}

Interruptible::Interruptible() {
  g_interrupted = false;
  g_old_handler = std::signal(SIGINT, on_sigint);
}
Interruptible::~Interruptible() { std::signal(SIGINT, g_old_handler); }
const std::atomic<bool>* Interruptible::flag() const { return &g_interrupted; }
bool Interruptible::cancelled() const { return g_interrupted; }

}  // namespace ms::app
