// `mechscope heads`: previous-token, duplicate-token and induction head scores (TransformerLens'
// head_detector semantics, core/head_detectors.h) on repeated random token sequences, stored as
// per-head scores of a run.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "app/circuit_common.h"
#include "core/head_detectors.h"

namespace ms::app {
namespace {

struct Opts : ModelOptions {
  std::string detect = "previous,duplicate,induction", error_measure = "mul", vocab_range, db;
  int64_t seq_len = 20, n = 16;
  uint64_t seed = 0;
  bool exclude_bos = false, exclude_current = false, no_bos = false;
  int top = 5;
};

// [BOS] r_1..r_n r_1..r_n with distinct random tokens r (each token's earlier occurrence is
// exactly one, so duplicate and induction patterns are unambiguous).
at::Tensor repeated_sequences(const Model& m, const Opts& o) {
  int64_t lo = 0, hi = m.config().d_vocab;
  if (!o.vocab_range.empty()) {
    size_t colon = o.vocab_range.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument(o.vocab_range);
      lo = std::stoll(o.vocab_range.substr(0, colon));
      hi = std::stoll(o.vocab_range.substr(colon + 1));
    } catch (const std::logic_error&) {
      fail_usage("--vocab-range '" + o.vocab_range + "': expected LO:HI");
    }
  }
  if (lo < 0 || hi > m.config().d_vocab || hi - lo < o.seq_len)
    fail_usage("--vocab-range must lie in [0, " + std::to_string(m.config().d_vocab) + ") and hold --seq-len tokens");
  if (o.seq_len < 2 || o.n < 1) fail_usage("--seq-len must be at least 2 and --n at least 1");
  int32_t bos = -1;
  if (!o.no_bos) bos = m.tokenizer() ? m.tokenizer()->special().bos : m.config().bos_token_id;
  const int64_t T = 2 * o.seq_len + (bos >= 0 ? 1 : 0);
  if (m.config().pos == PosKind::kLearned && T > m.config().n_ctx)
    fail_usage("--seq-len: " + std::to_string(T) + " tokens exceed the model's " + std::to_string(m.config().n_ctx) + " positions");
  std::mt19937_64 rng(o.seed);
  at::Tensor out = at::empty({o.n, T}, at::kLong);
  for (int64_t i = 0; i < o.n; ++i) {
    std::vector<int64_t> r;
    while (static_cast<int64_t>(r.size()) < o.seq_len) {
      int64_t x = lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo));
      if (x != bos && std::find(r.begin(), r.end(), x) == r.end()) r.push_back(x);
    }
    int64_t j = 0;
    if (bos >= 0) out[i][j++] = bos;
    for (int rep = 0; rep < 2; ++rep)
      for (int64_t x : r) out[i][j++] = x;
  }
  return out;
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
    at::Tensor tokens = repeated_sequences(*m, *o);
    std::unique_ptr<Database> db = open_database(o->db, false);
    nlohmann::json params = {{"detect", o->detect}, {"seq_len", o->seq_len}, {"n", o->n}, {"seed", o->seed},
                             {"error_measure", o->error_measure}, {"exclude_bos", o->exclude_bos},
                             {"exclude_current_token", o->exclude_current}};
    const int64_t run = begin_cli_run(*db, *m, "heads", params.dump());
    RunResults res;
    nlohmann::json j = {{"run", run}, {"detectors", nlohmann::json::object()}};
    std::ostringstream text;
    for (HeadPattern p : patterns) {
      Result<at::Tensor> s = detect_heads(*m, tokens, p, dopt);
      if (!s) {
        (void)db->fail_run(run, s.error().message);
        throw InputError(s.error().message, s.error().code);
      }
      res.scores.push_back(head_scores_from_tensor(head_pattern_name(p), *s));
      std::vector<std::pair<double, int64_t>> ranked;
      at::Tensor flat = s->reshape(-1);
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
    res.tensors.push_back({"tokens", tokens, R"({"kind":"tokens","axes":["sequence","position"]})"});
    throw_if_failed(db->finish_run(run, res));
    if (o->json) {
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << "run " << run << ": " << o->n << " repeated sequences of " << tokens.size(1) << " tokens\n" << text.str();
    }
    return 0;
  });
}

}  // namespace ms::app
