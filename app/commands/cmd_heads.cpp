// `mechscope heads`: previous-token, duplicate-token and induction head scores (TransformerLens'
// head_detector semantics, core/analysis/heads/head_detectors.h) on repeated random token sequences, stored as
// per-head scores of a run.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "app/commands/cli.h"
#include "runs/run_session.h"
#include "core/analysis/heads/head_detectors.h"
#include "runs/analysis_runs.h"

namespace ms::app {
namespace {

struct Opts : ModelOptions {
  std::string detect = "previous,duplicate,induction", error_measure = "mul", vocab_range, db;
  int64_t seq_len = 20, n = 16;
  uint64_t seed = 0;
  bool exclude_bos = false, exclude_current = false, no_bos = false;
  int top = 5;
};

// --vocab-range LO:HI -> [lo, hi); usage error on bad text.
std::pair<int64_t, int64_t> vocab_range(const Model& m, const std::string& text) {
  int64_t lo = 0, hi = m.config().d_vocab;
  if (!text.empty()) {
    size_t colon = text.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument(text);
      lo = std::stoll(text.substr(0, colon));
      hi = std::stoll(text.substr(colon + 1));
    } catch (const std::logic_error&) {
      fail_usage("--vocab-range '" + text + "': expected LO:HI");
    }
  }
  return {lo, hi};
}

}  // namespace

void register_heads(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("heads", "Previous-token, duplicate-token and induction head scores");
  add_model_options(*cmd, *o);
  cmd->add_option("--detect", o->detect, "previous, duplicate, induction (comma separated)")->capture_default_str();
  cmd->add_option("--seq-len", o->seq_len, "random tokens per half of each repeated sequence")->capture_default_str();
  cmd->add_option("--n", o->n, "sequences")->capture_default_str();
  cmd->add_option("--seed", o->seed, "sequence seed")->capture_default_str();
  cmd->add_option("--vocab-range", o->vocab_range, "token ids LO:HI to draw from (default: the whole vocabulary)");
  cmd->add_option("--error-measure", o->error_measure, "mul (sum(A*D)/sum(A)) or abs")->capture_default_str();
  cmd->add_flag("--exclude-bos", o->exclude_bos, "ignore attention to position 0");
  cmd->add_flag("--exclude-current", o->exclude_current, "ignore attention of each token to itself");
  cmd->add_flag("--no-bos", o->no_bos, "do not prepend BOS");
  cmd->add_option("--top", o->top, "heads to print per detector")->capture_default_str();
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  cmds.emplace_back(cmd, [o]() {
    std::vector<HeadPattern> patterns;
    std::stringstream ss(o->detect);
    std::string item;
    while (std::getline(ss, item, ',')) {
      std::string full = item == "previous" ? "previous_token_head" : item == "duplicate" ? "duplicate_token_head"
                         : item == "induction" ? "induction_head" : item;
      Result<HeadPattern> p = parse_head_pattern(full);
      if (!p) fail_usage("--detect: '" + item + "' is not previous, duplicate or induction");
      patterns.push_back(*p);
    }
    if (patterns.empty()) fail_usage("--detect is empty");
    if (o->error_measure != "mul" && o->error_measure != "abs") fail_usage("--error-measure must be mul or abs");
    DetectOptions dopt;
    dopt.exclude_bos = o->exclude_bos;
    dopt.exclude_current_token = o->exclude_current;
    dopt.error_measure = o->error_measure == "abs" ? ErrorMeasure::kAbs : ErrorMeasure::kMul;
    std::unique_ptr<Model> m = load_model(*o);
    auto [lo, hi] = vocab_range(*m, o->vocab_range);
    Result<at::Tensor> seqs = repeated_sequences(*m, o->seq_len, o->n, o->seed, lo, hi, o->no_bos);
    if (!seqs) throw InputError(seqs.error().message, seqs.error().code);
    at::Tensor tokens = *seqs;
    std::unique_ptr<Database> db = open_database(o->db, false);
    nlohmann::json params = {{"detect", o->detect}, {"seq_len", o->seq_len}, {"n", o->n}, {"seed", o->seed},
                             {"error_measure", o->error_measure}, {"exclude_bos", o->exclude_bos},
                             {"exclude_current_token", o->exclude_current}};
    RunControl control;
    SignalInterrupt sig(control);
    RunSession session(*db, control, {shell_join(command_line())});
    std::optional<HeadsRunOutcome> done = run_heads(session, *m, tokens, patterns, dopt, params.dump());
    if (done->cancelled)
      throw InputError("interrupted; run " + std::to_string(done->run_id) + " marked cancelled", ErrorCode::kInternal);
    const int64_t run = done->run_id;
    nlohmann::json j = {{"run", run}, {"detectors", nlohmann::json::object()}};
    std::ostringstream text;
    for (const auto& [p, s] : done->scores) {
      std::vector<std::pair<double, int64_t>> ranked;
      at::Tensor flat = s.reshape(-1);
      for (int64_t i = 0; i < flat.numel(); ++i) ranked.push_back({flat[i].item<double>(), i});
      std::sort(ranked.rbegin(), ranked.rend());
      nlohmann::json top = nlohmann::json::array();
      text << head_pattern_name(p) << ":";
      for (size_t k = 0; k < ranked.size() && k < static_cast<size_t>(std::max(0, o->top)); ++k) {
        const int64_t l = ranked[k].second / m->config().n_heads, h = ranked[k].second % m->config().n_heads;
        top.push_back({{"layer", l}, {"head", h}, {"score", ranked[k].first}});
        char buf[64];
        std::snprintf(buf, sizeof buf, " %lld.%lld (%.3f)", static_cast<long long>(l), static_cast<long long>(h), ranked[k].first);
        text << buf;
      }
      text << "\n";
      j["detectors"][head_pattern_name(p)] = top;
    }
    if (o->json) {
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << "run " << run << ": " << o->n << " repeated sequences of " << tokens.size(1) << " tokens\n" << text.str();
    }
    return 0;
  });
}

}  // namespace ms::app
