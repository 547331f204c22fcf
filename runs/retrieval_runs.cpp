// run_retrieval_stored: the retrieval-head grid (core/analysis/retrieval/retrieval.h) run cell by cell and stored the
// way `mechscope retrieval` and the workbench both store it (detection run, item runs with resume
// keys, masked runs linked to the detection run).
#include <ATen/ATen.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/analysis/retrieval/needle.h"
#include "runs/analysis_runs.h"

namespace ms {
namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// Thrown out of a condition when the cancel flag is set (caught below).
struct Cancelled {
  int64_t run_id;
};

// One grid condition (unmasked or with heads masked), cell by cell with resume.
struct Runner {
  const Model& model;
  Database& db;
  const std::vector<NeedleEpisode>& eps;
  const RetrievalOptions& ro;
  RunSpec base;
  std::string key_prefix;
  bool resume;
  RunControl& control;
  int64_t total = 0, done = 0, reused = 0;
  std::function<std::string(const std::vector<int32_t>&)> decode;

  std::vector<EpisodeResult> run(const std::vector<HeadRef>& masked, int64_t parent_run) {
    std::vector<EpisodeResult> out;
    const ModelConfig& c = model.config();
    for (const NeedleEpisode& ep : eps) {
      if (control.interrupted()) throw Cancelled{parent_run};
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
      ++done;
      control.update(done, total);
    }
    return out;
  }
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the haystack file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RetrievalRunOutcome run_impl(Database& db, const Model& m, const RetrievalRunConfig& cfg, RunControl& control) {
  const ModelConfig& c = m.config();
  if (cfg.depths < 1) fail_usage("--depths must be at least 1");
  if (cfg.mask_top < 0 || cfg.mask_random < 0 || cfg.seeds < 1)
    fail_usage("--mask-top/--mask-random must be >= 0 and --seeds >= 1");
  if (cfg.lengths.empty()) fail_usage("--lengths: no lengths");
  for (int64_t l : cfg.lengths)
    if (l < 8 || l >= c.n_ctx) fail_usage("--lengths: " + std::to_string(l) + " must be in [8, " + std::to_string(c.n_ctx) + ")");
  const std::vector<int64_t>& lengths = cfg.lengths;
  std::vector<double> depths = depth_fractions(cfg.depths);

  RetrievalOptions ro;
  ro.max_new = cfg.max_new;
  ro.threshold = cfg.threshold;
  ro.exact_match = cfg.exact_match || !m.tokenizer();
  std::vector<NeedleEpisode> eps;
  std::string source;
  if (m.tokenizer()) {
    std::string hay = cfg.haystack.empty() ? procedural_haystack(4000) : read_text(cfg.haystack);
    std::vector<Needle> needles = default_needles();
    if (!cfg.needles.empty()) {
      Result<std::vector<Needle>> r = read_needles(cfg.needles);
      if (!r) throw InputError(r.error().message, r.error().code);
      needles = *r;
    }
    Result<std::vector<NeedleEpisode>> e = text_episodes(m, hay, needles, lengths, depths);
    if (!e) throw InputError(e.error().message, e.error().code);
    eps = std::move(*e);
    std::vector<int32_t> nl = m.tokenizer()->encode("\n", false);
    if (!nl.empty()) ro.stop_ids.push_back(nl.back());
    if (c.eos_token_id >= 0) ro.stop_ids.push_back(static_cast<int32_t>(c.eos_token_id));
    std::string ns;
    for (const auto& n : needles) ns += n.needle + "\x1f" + n.question + "\x1f" + n.answer + "\x1e";
    source = std::to_string(fnv1a(hay)) + ":" + std::to_string(fnv1a(ns));
  } else {
    IdEpisodeSpec spec;
    spec.vocab = c.d_vocab;
    spec.n_needles = cfg.id_needles;
    for (int64_t l : lengths)
      if (l + spec.needle_len > c.n_ctx) fail_usage("--lengths: " + std::to_string(l) + " leaves no room to decode the needle");
    eps = id_episodes(spec, lengths, depths);
    source = "ids:" + std::to_string(spec.needle_len) + ":" + std::to_string(spec.n_needles);
  }

  Result<int64_t> model_id = db.register_model(m);  // for the resume keys (the session registers it again)
  if (!model_id) throw InputError(model_id.error().message, model_id.error().code);
  nlohmann::json params = {{"lengths", lengths}, {"depths", cfg.depths}, {"max_new", cfg.max_new},
                           {"exact_match", ro.exact_match}, {"source", source},
                           {"haystack", cfg.haystack.empty() ? "procedural" : cfg.haystack},
                           {"needles", cfg.needles.empty() ? "default" : cfg.needles}};
  const std::string key_prefix = "m" + std::to_string(*model_id) + ":" + std::to_string(fnv1a(params.dump()));
  params["threshold"] = cfg.threshold;
  RunSession detect(db, control, {cfg.command});
  detect.begin(m, "retrieval", params);
  const RunSpec& spec = detect.spec();
  const int64_t run = detect.run_id();

  RetrievalRunOutcome out;
  out.run_id = run;
  out.lengths = lengths;
  const int64_t n_l = static_cast<int64_t>(lengths.size()), n_d = static_cast<int64_t>(depths.size());
  const int64_t conditions = 1 + (cfg.mask_top > 0 ? 1 : 0) + (cfg.mask_random > 0 ? cfg.seeds : 0);
  Runner runner{m, db, eps, ro, spec, key_prefix, cfg.resume, control, conditions * static_cast<int64_t>(eps.size()), 0, 0, {}};
  if (m.tokenizer()) runner.decode = [&m](const std::vector<int32_t>& ids) { return m.tokenizer()->decode(ids, true); };
  try {
    std::vector<EpisodeResult> res = runner.run({}, run);
    out.report = aggregate_retrieval(eps, res, n_l, n_d, c.n_layers, c.n_heads);
    RunResults rr;
    rr.scores.push_back(head_scores_from_tensor("retrieval_score", out.report.head_score));
    std::string grid_meta = nlohmann::json({{"kind", "grid"}, {"axes", {"length", "depth"}}, {"lengths", lengths},
                                            {"depths", depths}, {"unit", "% correct"}}).dump();
    rr.tensors.push_back({"accuracy", out.report.accuracy, grid_meta});
    detect.finish(rr);
    out.retrieval_heads = retrieval_heads(out.report.head_score, cfg.threshold);

    // The causal check: masked re-runs, each a run linked to the detection run.
    auto masked_run = [&](const std::string& name, const std::vector<HeadRef>& hs, RetrievalConditionResult* into) {
      RunSession masked(db, control, {cfg.command});
      masked.begin(m, "retrieval-mask", {{"condition", name}, {"heads", heads_text(hs)}});
      RetrievalReport mr;
      try {
        std::vector<EpisodeResult> r = runner.run(hs, masked.run_id());
        mr = aggregate_retrieval(eps, r, n_l, n_d, c.n_layers, c.n_heads);
        RunResults o;
        o.tensors.push_back({"accuracy", mr.accuracy, grid_meta});
        o.links.push_back({0, "masked-from", run});
        masked.finish(o);
      } catch (const Cancelled&) {
        masked.cancel(cfg.cancel_note);
        throw;
      } catch (const std::exception& e) {
        masked.fail(e.what());
        throw;
      }
      into->heads.push_back(heads_text(hs));
      into->accuracy = into->accuracy.defined() ? into->accuracy + mr.accuracy : mr.accuracy;
      into->run_id = masked.run_id();
    };
    if (cfg.mask_top > 0) {
      std::vector<std::pair<HeadRef, double>> ranked = rank_heads(out.report.head_score);
      std::vector<HeadRef> hs;
      for (int64_t i = 0; i < cfg.mask_top && i < static_cast<int64_t>(ranked.size()); ++i)
        hs.push_back(ranked[static_cast<size_t>(i)].first);
      RetrievalConditionResult cd;
      cd.name = "top-" + std::to_string(cfg.mask_top);
      masked_run(cd.name, hs, &cd);
      out.conditions.push_back(cd);
    }
    if (cfg.mask_random > 0) {
      RetrievalConditionResult cd;
      cd.name = "random-" + std::to_string(cfg.mask_random);
      for (int64_t s = 0; s < cfg.seeds; ++s)
        masked_run(cd.name + " seed " + std::to_string(s),
                   random_heads(c.n_layers, c.n_heads, out.retrieval_heads, cfg.mask_random, static_cast<uint64_t>(s)), &cd);
      cd.accuracy = cd.accuracy / static_cast<double>(cfg.seeds);
      out.conditions.push_back(cd);
    }
  } catch (const Cancelled& cn) {
    detect.cancel(cfg.cancel_note);  // when the detection run itself was under way
    out.cancelled = true;
    out.cancelled_run = cn.run_id;
  } catch (const std::exception& e) {
    detect.fail(e.what());
    throw;
  }
  out.reused = runner.reused;
  return out;
}

}  // namespace

std::string heads_text(const std::vector<HeadRef>& hs) {
  std::string s;
  for (const auto& h : hs) s += (s.empty() ? "" : ",") + h.name();
  return s.empty() ? "none" : s;
}

Result<RetrievalRunOutcome> run_retrieval(Database& db, const Model& model, const RetrievalRunConfig& cfg,
                                          RunControl& control) {
  return guard([&] { return run_impl(db, model, cfg, control); });
}

Result<RetrievalRunOutcome> run_retrieval_stored(Database& db, const Model& model, const RetrievalRunConfig& cfg,
                                                 const RunProgress& progress, const std::atomic<bool>* cancel) {
  RunControl control(progress);
  control.follow(cancel);
  return run_retrieval(db, model, cfg, control);
}

}  // namespace ms
