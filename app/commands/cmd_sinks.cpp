// `mechscope sinks`: attention sinks (first-token and hidden), massive activations, per-head sink
// scores stored as a run, and ACT calibration as a linked re-run with the change in a task metric.
#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/commands/cli.h"
#include "app/commands/progress.h"
#include "core/io/prompts.h"
#include "core/analysis/sinks/sinks.h"
#include "core/analysis/task_metrics.h"
#include "runs/analysis_runs.h"
#include "storage/database.h"

namespace ms::app {
namespace {

std::atomic<bool> g_cancel{false};
void on_sigint(int) { g_cancel = true; }

struct Opts : ModelOptions {
  std::string text, tokens, prompts_file, hidden = "abs:0.1", heads, db;
  int64_t max_tokens = 0;
  double epsilon = 0.3, beta = 0.4;
  bool calibrate = false;
  int top = 10;
};

std::vector<HeadRef> parse_heads(const std::string& s, const ModelConfig& c) {
  std::vector<HeadRef> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t dot = item.find('.');
    try {
      if (dot == std::string::npos) throw std::invalid_argument(item);
      HeadRef h{std::stoll(item.substr(0, dot)), std::stoll(item.substr(dot + 1))};
      if (h.layer < 0 || h.layer >= c.n_layers || h.head < 0 || h.head >= c.n_heads)
        fail_usage("--heads: " + item + " is outside the model's " + std::to_string(c.n_layers) + " layers x " +
                   std::to_string(c.n_heads) + " heads");
      out.push_back(h);
    } catch (const std::logic_error&) {
      fail_usage("--heads: '" + item + "' is not LAYER.HEAD (e.g. 3.5)");
    }
  }
  if (out.empty()) fail_usage("--heads is empty");
  return out;
}

// The task metric of one prompt under an optional calibration: loss on the continuation (or on
// the prompt itself), and whether a multiple-choice answer is right.
struct Metric {
  double loss = 0;
  int correct = -1;  // -1: no choices
};

}  // namespace

void register_sinks(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("sinks", "Find attention sinks, hidden sinks and massive activations");
  add_model_options(*cmd, *o);
  cmd->add_option("--text,-t", o->text, "one prompt");
  cmd->add_option("--tokens", o->tokens, "one prompt as token ids, comma separated");
  cmd->add_option("--prompts", o->prompts_file, "prompts: .txt (one per line) or .jsonl ({\"text\", \"continuation\", \"choices\", \"answer\"})");
  cmd->add_option("--max-tokens", o->max_tokens, "truncate prompts to this many tokens (0: no limit)");
  cmd->add_option("--epsilon", o->epsilon, "a head has a sink at key k when alpha_k > epsilon")->capture_default_str();
  cmd->add_option("--hidden-threshold", o->hidden, "hidden sinks: abs:X (alpha_k > X) or rel:X (X times uniform)")->capture_default_str();
  cmd->add_flag("--calibrate", o->calibrate, "re-run with the chosen heads' hidden sinks scaled by --beta (ACT)");
  cmd->add_option("--beta", o->beta, "calibration factor for attention to hidden sinks")->capture_default_str();
  cmd->add_option("--heads", o->heads, "heads to calibrate: L.H,... or 'search' (ACT's one-head-at-a-time search)");
  cmd->add_option("--top", o->top, "rows to print per table")->capture_default_str();
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  cmds.emplace_back(cmd, [o]() {
    if ((!o->text.empty()) + (!o->tokens.empty()) + (!o->prompts_file.empty()) != 1)
      fail_usage("sinks needs one of --text, --tokens or --prompts");
    if (o->calibrate && o->heads.empty()) fail_usage("--calibrate needs --heads L.H,... or --heads search");
    if (!(o->beta >= 0 && o->beta <= 1)) fail_usage("--beta must be in [0, 1]");
    SinkOptions so;
    so.epsilon = o->epsilon;
    so.max_tokens = o->max_tokens;
    {
      const std::string& h = o->hidden;
      size_t colon = h.find(':');
      std::string kind = colon == std::string::npos ? "" : h.substr(0, colon);
      if (kind != "abs" && kind != "rel") fail_usage("--hidden-threshold '" + h + "': expected abs:X or rel:X");
      so.hidden_relative = kind == "rel";
      try {
        so.hidden_threshold = std::stod(h.substr(colon + 1));
      } catch (const std::exception&) {
        fail_usage("--hidden-threshold '" + h + "': expected abs:X or rel:X");
      }
    }
    std::vector<PromptRecord> records;
    if (!o->prompts_file.empty()) {
      Result<std::vector<PromptRecord>> r = read_prompts(o->prompts_file);
      if (!r) throw InputError(r.error().message, r.error().code);
      records = std::move(*r);
    } else {
      PromptRecord r;
      r.text = o->text;
      if (!o->tokens.empty()) r.tokens = parse_ids(o->tokens);
      records.push_back(std::move(r));
    }
    std::unique_ptr<Model> m = load_model(*o);
    const ModelConfig& c = m->config();
    std::vector<HeadRef> heads;
    if (o->calibrate && o->heads != "search") heads = parse_heads(o->heads, c);
    std::vector<std::vector<int32_t>> prompts;
    for (const auto& r : records) prompts.push_back(r.tokens.empty() ? input_ids(*m, r.text, "") : r.tokens);

    std::unique_ptr<Database> db = open_database(o->db, false);
    Result<int64_t> model_id = db->register_model(*m);
    if (!model_id) throw InputError(model_id.error().message, model_id.error().code);
    nlohmann::json params = {{"epsilon", o->epsilon}, {"hidden_threshold", o->hidden},
                             {"max_tokens", o->max_tokens}, {"n_prompts", prompts.size()}};
    RunSpec spec;
    spec.kind = "sinks";
    spec.model_id = *model_id;
    spec.params_json = params.dump();
    spec.command = shell_join(command_line());
    Result<int64_t> run = db->begin_run(spec);
    if (!run) throw InputError(run.error().message, run.error().code);

    g_cancel = false;
    auto old = std::signal(SIGINT, on_sigint);
    ProgressBar bar("sinks", static_cast<int64_t>(prompts.size()), o->json);
    SinkReport rep = analyze_sinks(*m, prompts, so, [&](int64_t done, int64_t total) {
      bar.update(done);
      (void)db->set_progress(*run, static_cast<double>(done) / static_cast<double>(total));
    }, &g_cancel);
    bar.finish();
    std::signal(SIGINT, old);
    if (g_cancel) {
      (void)db->cancel_run(*run, "interrupted after " + std::to_string(rep.n_prompts) + " prompts");
      throw InputError("interrupted; run " + std::to_string(*run) + " marked cancelled", ErrorCode::kInternal);
    }

    std::vector<std::string> texts;
    for (const auto& r : records) texts.push_back(r.text);
    RunResults res = sink_run_results(rep, texts, prompts, [&](int32_t id) { return token_label(*m, id); });
    Status st = db->finish_run(*run, res);
    if (!st) throw InputError(st.error().message, st.error().code);

    // Hidden sinks by token, and the top heads.
    std::map<std::string, int> by_token;
    for (const auto& h : rep.hidden) by_token[h.token.empty() ? "<" + std::to_string(h.token_id) + ">" : h.token]++;
    std::vector<std::pair<double, std::pair<int64_t, int64_t>>> ranked;
    for (int64_t l = 0; l < c.n_layers; ++l)
      for (int64_t h = 0; h < c.n_heads; ++h) ranked.push_back({rep.head_alpha0[l][h].item<double>(), {l, h}});
    std::sort(ranked.rbegin(), ranked.rend());
    const size_t top = static_cast<size_t>(std::max(0, o->top));

    // Calibration: a linked re-run with the change in the task metric.
    nlohmann::json calib;
    if (o->calibrate) {
      auto sinks_of = [&](size_t p, const std::vector<HeadRef>& hs) {
        std::vector<int64_t> pos;
        for (const auto& h : rep.hidden)
          if (h.prompt == static_cast<int64_t>(p))
            for (const auto& hr : hs)
              if (hr.layer == h.layer && hr.head == h.head) pos.push_back(h.position);
        return pos;
      };
      auto evaluate = [&](const std::vector<HeadRef>& hs, double beta) {
        std::vector<Metric> out;
        for (size_t p = 0; p < prompts.size(); ++p) {
          SinkCalibration cal(hs, sinks_of(p, hs), beta);
          ForwardOptions fo;
          fo.attention = hs.empty() ? nullptr : &cal;
          Metric mt;
          std::vector<int32_t> ids = prompts[p];
          int64_t start = 1;
          if (!records[p].continuation.empty() && m->tokenizer()) {
            std::vector<int32_t> cont = m->tokenizer()->encode(records[p].continuation, false);
            start = static_cast<int64_t>(ids.size());
            ids.insert(ids.end(), cont.begin(), cont.end());
          }
          mt.loss = ids.size() > 1 ? continuation_loss(*m, ids, start, fo) : 0.0;
          if (!records[p].choices.empty() && m->tokenizer()) {
            std::vector<std::vector<int32_t>> ch;
            for (const auto& s : records[p].choices) ch.push_back(m->tokenizer()->encode(s, false));
            mt.correct = best_choice(*m, prompts[p], ch, fo) == records[p].answer ? 1 : 0;
          }
          out.push_back(mt);
        }
        return out;
      };
      auto mean_loss = [](const std::vector<Metric>& v) {
        double s = 0;
        for (const auto& x : v) s += x.loss;
        return v.empty() ? 0.0 : s / static_cast<double>(v.size());
      };
      std::vector<Metric> base = evaluate({}, 1.0);
      if (o->heads == "search") {  // ACT: calibrate one head at a time, keep the ones that help
        std::vector<HeadRef> cands;
        for (int64_t l = 0; l < c.n_layers; ++l)
          for (int64_t h = 0; h < c.n_heads; ++h)
            if (rep.head_hidden_count[l][h].item<int64_t>() > 0) cands.push_back({l, h});
        ProgressBar sb("calibration search", static_cast<int64_t>(cands.size()), o->json);
        for (size_t i = 0; i < cands.size(); ++i) {
          if (mean_loss(evaluate({cands[i]}, o->beta)) < mean_loss(base)) heads.push_back(cands[i]);
          sb.update(static_cast<int64_t>(i + 1));
        }
        sb.finish();
      }
      std::vector<Metric> after = heads.empty() ? base : evaluate(heads, o->beta);
      std::vector<double> lb, la;
      int acc_b = 0, acc_a = 0, n_mc = 0;
      for (size_t p = 0; p < base.size(); ++p) {
        lb.push_back(base[p].loss);
        la.push_back(after[p].loss);
        if (base[p].correct >= 0) {
          ++n_mc;
          acc_b += base[p].correct;
          acc_a += after[p].correct;
        }
      }
      nlohmann::json hs = nlohmann::json::array();
      for (const auto& h : heads) hs.push_back(h.name());
      nlohmann::json cparams = {{"beta", o->beta}, {"heads", hs}, {"selection", o->heads == "search" ? "search" : "list"}};
      RunSpec cs = spec;
      cs.kind = "sinks-calibration";
      cs.params_json = cparams.dump();
      RunResults cr;
      cr.inputs = res.inputs;
      cr.tensors.push_back({"loss_before", at::tensor(lb, at::kDouble), R"({"kind":"per-input","metric":"loss"})"});
      cr.tensors.push_back({"loss_after", at::tensor(la, at::kDouble), R"({"kind":"per-input","metric":"loss"})"});
      cr.links.push_back({0, "calibrated-from", *run});
      Result<int64_t> crun = db->store_run(cs, cr);
      if (!crun) throw InputError(crun.error().message, crun.error().code);
      calib = {{"run_id", *crun}, {"heads", hs}, {"beta", o->beta}, {"loss_before", mean_loss(base)},
               {"loss_after", mean_loss(after)}};
      if (n_mc > 0) calib["accuracy_before"] = static_cast<double>(acc_b) / n_mc, calib["accuracy_after"] = static_cast<double>(acc_a) / n_mc;
    }

    if (o->json) {
      nlohmann::json j;
      j["run_id"] = *run;
      j["sink_rate_first_token"] = rep.sink_rate_first;
      j["top_heads"] = nlohmann::json::array();
      for (size_t i = 0; i < std::min(top, ranked.size()); ++i)
        j["top_heads"].push_back({{"layer", ranked[i].second.first}, {"head", ranked[i].second.second},
                                  {"alpha0", ranked[i].first}});
      j["hidden_sinks"] = nlohmann::json::array();
      for (const auto& h : rep.hidden)
        j["hidden_sinks"].push_back({{"prompt", h.prompt}, {"layer", h.layer}, {"head", h.head},
                                     {"position", h.position}, {"token", h.token}, {"alpha", h.alpha}});
      j["hidden_sink_tokens"] = by_token;
      j["massive"] = nlohmann::json::array();
      for (const auto& a : rep.massive)
        j["massive"].push_back({{"prompt", a.prompt}, {"layer", a.layer}, {"position", a.position},
                                {"dim", a.dim}, {"token", a.token}, {"value", a.value}, {"ratio", a.ratio_to_median}});
      if (!calib.is_null()) j["calibration"] = calib;
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return 0;
    }
    std::printf("run %lld: %lld prompts, %lld layers x %lld heads\n", static_cast<long long>(*run),
                static_cast<long long>(rep.n_prompts), static_cast<long long>(c.n_layers), static_cast<long long>(c.n_heads));
    std::printf("first-token sink rate (alpha_0 > %.2f): %.1f%% of (prompt, layer, head)\n", o->epsilon, rep.sink_rate_first);
    std::printf("top heads by alpha_0:\n");
    for (size_t i = 0; i < std::min(top, ranked.size()); ++i)
      std::printf("  %lld.%lld  alpha_0 %.3f  sink rate %.0f%%\n", static_cast<long long>(ranked[i].second.first),
                  static_cast<long long>(ranked[i].second.second), ranked[i].first,
                  100 * rep.head_sink_rate[ranked[i].second.first][ranked[i].second.second].item<double>());
    std::printf("hidden sinks (%s): %zu\n", o->hidden.c_str(), rep.hidden.size());
    std::vector<std::pair<int, std::string>> tokens;
    for (const auto& [t, n] : by_token) tokens.push_back({n, t});
    std::sort(tokens.rbegin(), tokens.rend());
    for (size_t i = 0; i < std::min(top, tokens.size()); ++i)
      std::cout << "  '" << tokens[i].second << "' x" << tokens[i].first << "\n";
    std::printf("massive activations (|h| > %.0f and >= %.0fx the median): %zu\n", so.massive_abs, so.massive_ratio, rep.massive.size());
    for (size_t i = 0; i < std::min(top, rep.massive.size()); ++i) {
      const auto& a = rep.massive[i];
      std::cout << "  layer " << a.layer << " position " << a.position << " ('" << a.token << "') dim " << a.dim
                << " value " << a.value << " (" << static_cast<long long>(a.ratio_to_median) << "x median)\n";
    }
    if (!calib.is_null())
      std::cout << "calibration (run " << calib["run_id"] << ", beta " << o->beta << ", heads " << calib["heads"].dump()
                << "): loss " << calib["loss_before"].get<double>() << " -> " << calib["loss_after"].get<double>() << "\n";
    return 0;
  });
}

}  // namespace ms::app
