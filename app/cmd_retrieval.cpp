// `mechscope retrieval`: retrieval heads (Wu et al. 2024) from a needle-in-a-haystack grid, stored
// as a run with head scores and the accuracy grid; --mask-top / --mask-random re-run the grid with
// heads masked (linked runs). Every (condition, length, depth, needle) cell is stored as its own
// item run with a resume key, so --resume skips the cells already done.
#include <ATen/ATen.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli.h"
#include "app/progress.h"
#include "core/needle.h"
#include "core/retrieval.h"
#include "storage/database.h"

namespace ms::app {
namespace {

std::atomic<bool> g_cancel{false};
void on_sigint(int) { g_cancel = true; }

struct Opts : ModelOptions {
  std::string haystack, needles, lengths, db;
  int64_t depths = 10, mask_top = 0, mask_random = 0, seeds = 3, max_new = 50, id_needles = 2;
  double threshold = 0.1;
  bool resume = false, exact = false;
  int top = 10;
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string heads_text(const std::vector<HeadRef>& hs) {
  std::string s;
  for (const auto& h : hs) s += (s.empty() ? "" : ",") + h.name();
  return s.empty() ? "none" : s;
}

std::string fmt_grid_row(const at::Tensor& acc, int64_t li) {
  std::string s;
  char buf[16];
  for (int64_t d = 0; d < acc.size(1); ++d) {
    std::snprintf(buf, sizeof(buf), "%4.0f", acc[li][d].item<double>());
    s += buf;
  }
  return s;
}

// One grid condition (unmasked or with heads masked), cell by cell with resume.
struct Runner {
  const Model& model;
  Database& db;
  const std::vector<NeedleEpisode>& eps;
  const RetrievalOptions& ro;
  RunSpec base;
  std::string key_prefix;
  bool resume;
  ProgressBar& bar;
  int64_t& done;
  int64_t reused = 0;
  std::function<std::string(const std::vector<int32_t>&)> decode;

  std::vector<EpisodeResult> run(const std::vector<HeadRef>& masked, int64_t parent_run) {
    std::vector<EpisodeResult> out;
    const ModelConfig& c = model.config();
    for (const NeedleEpisode& ep : eps) {
      if (g_cancel) break;
      std::string key = key_prefix + "|mask=" + heads_text(masked) + "|cell=" + std::to_string(ep.length_index) + "," +
                        std::to_string(ep.depth_index) + "," + std::to_string(ep.needle_index);
      EpisodeResult r;
      bool have = false;
      if (resume) {
        Result<std::optional<int64_t>> f = db.find_done_run("retrieval-item", key);
        if (f && f->has_value()) {
          Result<at::Tensor> hs = db.get_tensor(**f, "head_score");
          Result<at::Tensor> oc = db.get_tensor(**f, "outcome");
          Result<at::Tensor> gen = db.get_tensor(**f, "generated");
          if (hs && oc && gen && hs->dim() == 2 && hs->size(0) == c.n_layers && hs->size(1) == c.n_heads) {
            r.head_score = hs->to(at::kDouble);
            r.rouge = (*oc)[0].item<double>();
            r.correct = (*oc)[1].item<double>() > 0.5;
            for (int64_t i = 0; i < gen->numel(); ++i) r.generated.push_back(static_cast<int32_t>((*gen)[i].item<int64_t>()));
            have = true;
            ++reused;
          }
        }
      }
      if (!have) {
        r = run_needle_episode(model, ep, ro, masked, masked.empty(), decode);
        RunSpec s = base;
        s.kind = "retrieval-item";
        s.resume_key = key;
        s.params_json = nlohmann::json({{"length_index", ep.length_index}, {"depth_index", ep.depth_index},
                                        {"needle_index", ep.needle_index}, {"masked", heads_text(masked)}}).dump();
        RunResults rr;
        std::vector<int64_t> gen(r.generated.begin(), r.generated.end());
        rr.tensors.push_back({"head_score", r.head_score, R"({"kind":"head-score"})"});
        rr.tensors.push_back({"outcome", at::tensor({r.rouge, r.correct ? 1.0 : 0.0}, at::kDouble), R"({"fields":["rouge1","correct"]})"});
        rr.tensors.push_back({"generated", at::tensor(gen, at::kLong), "{}"});
        rr.links.push_back({0, "item-of", parent_run});
        Result<int64_t> id = db.store_run(s, rr);
        if (!id) throw InputError(id.error().message, id.error().code);
      }
      out.push_back(std::move(r));
      bar.update(++done);
    }
    return out;
  }
};

void print_heatmap(const at::Tensor& s) {
  static const char* kShades = " .:-=+*#%@";
  std::printf("retrieval score heatmap (rows: layers, columns: heads; ' ' 0 .. '@' >= 0.9)\n");
  for (int64_t l = 0; l < s.size(0); ++l) {
    std::printf("  %3lld |", static_cast<long long>(l));
    for (int64_t h = 0; h < s.size(1); ++h) {
      double v = std::clamp(s[l][h].item<double>(), 0.0, 0.999);
      std::putchar(kShades[static_cast<int>(v * 10)]);
    }
    std::printf("|\n");
  }
}

}  // namespace

void register_retrieval(CLI::App& app, std::vector<std::pair<CLI::App*, Command>>& cmds) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("retrieval", "Find retrieval heads with needle-in-a-haystack tests (Wu et al. 2024)");
  add_model_options(*cmd, *o);
  cmd->add_option("--haystack", o->haystack, "haystack text file (default: procedural filler text)");
  cmd->add_option("--needles", o->needles, "needles: JSONL of {\"needle\", \"question\", \"answer\"} (default: the built-in set)");
  cmd->add_option("--lengths", o->lengths, "context lengths a,b,c (default: 10 from 256 to the context limit)");
  cmd->add_option("--depths", o->depths, "needle depths, evenly from 0% to 100%")->capture_default_str();
  cmd->add_option("--threshold", o->threshold, "retrieval head iff score > threshold")->capture_default_str();
  cmd->add_option("--mask-top", o->mask_top, "re-run with the top K retrieval heads masked");
  cmd->add_option("--mask-random", o->mask_random, "re-run with K random non-retrieval heads masked (--seeds draws)");
  cmd->add_option("--seeds", o->seeds, "random draws for --mask-random")->capture_default_str();
  cmd->add_option("--max-new", o->max_new, "greedy decode steps at most")->capture_default_str();
  cmd->add_flag("--exact-match", o->exact, "correct iff the output starts with the answer (implied without a tokenizer)");
  cmd->add_option("--id-needles", o->id_needles, "models without a tokenizer: token-id needles per cell")->capture_default_str();
  cmd->add_flag("--resume", o->resume, "skip the (length, depth, needle) cells already stored with the same parameters");
  cmd->add_option("--top", o->top, "top heads to print")->capture_default_str();
  cmd->add_option("--db", o->db, "database file (default: $MECHSCOPE_DB or ~/.local/share/mechscope/mechscope.db)");
  cmds.emplace_back(cmd, [o]() {
    if (o->depths < 1) fail_usage("--depths must be at least 1");
    if (o->mask_top < 0 || o->mask_random < 0 || o->seeds < 1) fail_usage("--mask-top/--mask-random must be >= 0 and --seeds >= 1");
    std::unique_ptr<Model> m = load_model(*o);
    const ModelConfig& c = m->config();
    std::vector<int64_t> lengths;
    if (!o->lengths.empty()) {
      for (int32_t v : parse_ids(o->lengths)) lengths.push_back(v);
    } else {
      lengths = default_lengths(c.n_ctx, 10, std::min<int64_t>(256, std::max<int64_t>(c.n_ctx / 8, 32)));
    }
    for (int64_t l : lengths)
      if (l < 8 || l >= c.n_ctx) fail_usage("--lengths: " + std::to_string(l) + " must be in [8, " + std::to_string(c.n_ctx) + ")");
    std::vector<double> depths = depth_fractions(o->depths);

    RetrievalOptions ro;
    ro.max_new = o->max_new;
    ro.threshold = o->threshold;
    ro.exact_match = o->exact || !m->tokenizer();
    std::vector<NeedleEpisode> eps;
    std::string source;
    if (m->tokenizer()) {
      std::string hay;
      if (!o->haystack.empty()) {
        std::ifstream in(o->haystack, std::ios::binary);
        if (!in) throw InputError(o->haystack + ": cannot open the haystack file");
        std::stringstream ss;
        ss << in.rdbuf();
        hay = ss.str();
      } else {
        hay = procedural_haystack(4000);
      }
      std::vector<Needle> needles = default_needles();
      if (!o->needles.empty()) {
        Result<std::vector<Needle>> r = read_needles(o->needles);
        if (!r) throw InputError(r.error().message, r.error().code);
        needles = *r;
      }
      Result<std::vector<NeedleEpisode>> e = text_episodes(*m, hay, needles, lengths, depths);
      if (!e) throw InputError(e.error().message, e.error().code);
      eps = std::move(*e);
      std::vector<int32_t> nl = m->tokenizer()->encode("\n", false);
      if (!nl.empty()) ro.stop_ids.push_back(nl.back());
      if (c.eos_token_id >= 0) ro.stop_ids.push_back(static_cast<int32_t>(c.eos_token_id));
      std::string ns;
      for (const auto& n : needles) ns += n.needle + "\x1f" + n.question + "\x1f" + n.answer + "\x1e";
      source = std::to_string(fnv1a(hay)) + ":" + std::to_string(fnv1a(ns));
    } else {
      IdEpisodeSpec spec;
      spec.vocab = c.d_vocab;
      spec.n_needles = o->id_needles;
      for (int64_t l : lengths)
        if (l + spec.needle_len > c.n_ctx) fail_usage("--lengths: " + std::to_string(l) + " leaves no room to decode the needle");
      eps = id_episodes(spec, lengths, depths);
      source = "ids:" + std::to_string(spec.needle_len) + ":" + std::to_string(spec.n_needles);
    }

    std::unique_ptr<Database> db = open_database(o->db, false);
    Result<int64_t> model_id = db->register_model(*m);
    if (!model_id) throw InputError(model_id.error().message, model_id.error().code);
    nlohmann::json params = {{"lengths", lengths}, {"depths", o->depths}, {"max_new", o->max_new},
                             {"exact_match", ro.exact_match}, {"source", source},
                             {"haystack", o->haystack.empty() ? "procedural" : o->haystack},
                             {"needles", o->needles.empty() ? "default" : o->needles}};
    const std::string key_prefix = "m" + std::to_string(*model_id) + ":" + std::to_string(fnv1a(params.dump()));
    params["threshold"] = o->threshold;
    RunSpec spec;
    spec.kind = "retrieval";
    spec.model_id = *model_id;
    spec.params_json = params.dump();
    spec.command = shell_join(command_line());
    Result<int64_t> run = db->begin_run(spec);
    if (!run) throw InputError(run.error().message, run.error().code);

    const int64_t n_l = static_cast<int64_t>(lengths.size()), n_d = static_cast<int64_t>(depths.size());
    int64_t conditions = 1 + (o->mask_top > 0 ? 1 : 0) + (o->mask_random > 0 ? o->seeds : 0);
    g_cancel = false;
    auto old = std::signal(SIGINT, on_sigint);
    ProgressBar bar("retrieval", conditions * static_cast<int64_t>(eps.size()), o->json);
    int64_t done = 0;
    Runner runner{*m, *db, eps, ro, spec, key_prefix, o->resume, bar, done, 0, {}};
    if (m->tokenizer()) runner.decode = [&](const std::vector<int32_t>& ids) { return m->tokenizer()->decode(ids, true); };
    auto interrupted = [&](int64_t id) {
      bar.finish();
      std::signal(SIGINT, old);
      (void)db->cancel_run(id, "interrupted; finished cells are kept, re-run with --resume");
      throw InputError("interrupted; run " + std::to_string(id) + " marked cancelled (re-run with --resume to continue)",
                       ErrorCode::kInternal);
    };
    std::vector<EpisodeResult> res = runner.run({}, *run);
    if (g_cancel) interrupted(*run);
    RetrievalReport rep = aggregate_retrieval(eps, res, n_l, n_d, c.n_layers, c.n_heads);
    RunResults rr;
    rr.scores.push_back(head_scores_from_tensor("retrieval_score", rep.head_score));
    std::string grid_meta = nlohmann::json({{"kind", "grid"}, {"axes", {"length", "depth"}}, {"lengths", lengths},
                                            {"depths", depths}, {"unit", "% correct"}}).dump();
    rr.tensors.push_back({"accuracy", rep.accuracy, grid_meta});
    Status st = db->finish_run(*run, rr);
    if (!st) throw InputError(st.error().message, st.error().code);
    std::vector<HeadRef> ret = retrieval_heads(rep.head_score, o->threshold);

    // The causal check: masked re-runs, each a run linked to the detection run.
    struct Condition {
      std::string name;
      int64_t run_id = 0;
      at::Tensor accuracy;
      std::vector<std::string> heads;
    };
    std::vector<Condition> conds;
    auto masked_run = [&](const std::string& name, const std::vector<HeadRef>& hs, const std::string& tensor_name,
                          Condition* into) {
      RunSpec ms = spec;
      ms.kind = "retrieval-mask";
      ms.params_json = nlohmann::json({{"condition", name}, {"heads", heads_text(hs)}}).dump();
      Result<int64_t> id = db->begin_run(ms);
      if (!id) throw InputError(id.error().message, id.error().code);
      std::vector<EpisodeResult> r = runner.run(hs, *id);
      if (g_cancel) interrupted(*id);
      RetrievalReport mr = aggregate_retrieval(eps, r, n_l, n_d, c.n_layers, c.n_heads);
      RunResults out;
      out.tensors.push_back({tensor_name, mr.accuracy, grid_meta});
      out.links.push_back({0, "masked-from", *run});
      Status s = db->finish_run(*id, out);
      if (!s) throw InputError(s.error().message, s.error().code);
      into->heads.push_back(heads_text(hs));
      into->accuracy = into->accuracy.defined() ? into->accuracy + mr.accuracy : mr.accuracy;
      into->run_id = *id;
    };
    if (o->mask_top > 0) {
      std::vector<std::pair<HeadRef, double>> ranked = rank_heads(rep.head_score);
      std::vector<HeadRef> hs;
      for (int64_t i = 0; i < o->mask_top && i < static_cast<int64_t>(ranked.size()); ++i) hs.push_back(ranked[static_cast<size_t>(i)].first);
      Condition cd;
      cd.name = "top-" + std::to_string(o->mask_top);
      masked_run(cd.name, hs, "accuracy", &cd);
      conds.push_back(cd);
    }
    if (o->mask_random > 0) {
      Condition cd;
      cd.name = "random-" + std::to_string(o->mask_random);
      for (int64_t s = 0; s < o->seeds; ++s)
        masked_run(cd.name + " seed " + std::to_string(s), random_heads(c.n_layers, c.n_heads, ret, o->mask_random, static_cast<uint64_t>(s)),
                   "accuracy", &cd);
      cd.accuracy = cd.accuracy / static_cast<double>(o->seeds);
      conds.push_back(cd);
    }
    bar.finish(runner.reused > 0 ? std::to_string(runner.reused) + " cells resumed" : "");
    std::signal(SIGINT, old);

    std::vector<std::pair<HeadRef, double>> ranked = rank_heads(rep.head_score);
    const size_t top = static_cast<size_t>(std::max(0, o->top));
    double base_acc = rep.accuracy.mean().item<double>();
    if (o->json) {
      nlohmann::json j;
      j["run_id"] = *run;
      j["tests"] = rep.n_tests;
      j["counted"] = rep.n_counted;
      j["accuracy"] = base_acc;
      j["resumed_cells"] = runner.reused;
      j["top_heads"] = nlohmann::json::array();
      for (size_t i = 0; i < std::min(top, ranked.size()); ++i)
        j["top_heads"].push_back({{"layer", ranked[i].first.layer}, {"head", ranked[i].first.head}, {"score", ranked[i].second}});
      j["retrieval_heads"] = heads_text(ret);
      j["conditions"] = nlohmann::json::array();
      for (const auto& cd : conds) {
        double a = cd.accuracy.mean().item<double>();
        j["conditions"].push_back({{"name", cd.name}, {"run_id", cd.run_id}, {"heads", cd.heads}, {"accuracy", a},
                                   {"drop", base_acc - a}});
      }
      std::cout << j.dump() << "\n";
      return 0;
    }
    std::printf("run %lld: %lld tests (%lld retrieved), %lld layers x %lld heads, accuracy %.1f%%\n",
                static_cast<long long>(*run), static_cast<long long>(rep.n_tests), static_cast<long long>(rep.n_counted),
                static_cast<long long>(c.n_layers), static_cast<long long>(c.n_heads), base_acc);
    print_heatmap(rep.head_score);
    std::printf("top heads (retrieval heads: score > %.2f: %s):\n", o->threshold, heads_text(ret).c_str());
    for (size_t i = 0; i < std::min(top, ranked.size()); ++i)
      std::printf("  %lld.%lld  %.3f\n", static_cast<long long>(ranked[i].first.layer),
                  static_cast<long long>(ranked[i].first.head), ranked[i].second);
    std::printf("accuracy %% (rows: length, columns: depth 0%%..100%%): unmasked");
    for (const auto& cd : conds) std::printf("  |  %s", cd.name.c_str());
    std::printf("\n");
    for (int64_t li = 0; li < n_l; ++li) {
      std::printf("  %6lld %s", static_cast<long long>(lengths[static_cast<size_t>(li)]), fmt_grid_row(rep.accuracy, li).c_str());
      for (const auto& cd : conds) std::printf("  | %s", fmt_grid_row(cd.accuracy, li).c_str());
      std::printf("\n");
    }
    for (const auto& cd : conds) {
      double a = cd.accuracy.mean().item<double>();
      std::string hs;
      for (const auto& h : cd.heads) hs += (hs.empty() ? "" : "; ") + h;
      std::printf("%s masked (last run %lld, heads per draw: %s): accuracy %.1f%% (drop %.1f points)\n",
                  cd.name.c_str(), static_cast<long long>(cd.run_id), hs.c_str(), a, base_acc - a);
    }
    return 0;
  });
}

}  // namespace ms::app
