// retrieval_spec and run_retrieval: the retrieval-head grid declared once and run cell by cell the
// same way everywhere (detection run, item runs with resume keys in live sessions, masked runs).
#include "runs/retrieval_run.h"

#include <ATen/ATen.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "core/analysis/retrieval/needle.h"

namespace ms {
namespace {

const char* const kCancelNote = "cancelled; finished cells are kept (mechscope retrieval --resume continues)";

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the haystack file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The episodes of the grid and how to run them.
struct Grid {
  std::vector<NeedleEpisode> eps;
  RetrievalOptions ro;
  std::string source;  // hash of the haystack and needles (or the id-episode shape)
  std::function<std::string(const std::vector<int32_t>&)> decode;
};

Grid make_grid(const Model& m, const nlohmann::json& p, const std::vector<int64_t>& lengths) {
  const ModelConfig& c = m.config();
  const std::vector<double> depths = depth_fractions(p["depths"].get<int64_t>());
  Grid g;
  g.ro.max_new = p["max_new"].get<int64_t>();
  g.ro.threshold = p["threshold"].get<double>();
  g.ro.exact_match = p["exact_match"].get<bool>();
  if (!m.tokenizer()) {
    IdEpisodeSpec spec;
    spec.vocab = c.d_vocab;
    spec.n_needles = p["id_needles"].get<int64_t>();
    for (int64_t l : lengths)
      if (l + spec.needle_len > c.n_ctx)
        fail_usage("lengths: " + std::to_string(l) + " leaves no room to decode the needle (n_ctx " + std::to_string(c.n_ctx) + ")");
    g.eps = id_episodes(spec, lengths, depths);
    g.source = "ids:" + std::to_string(spec.needle_len) + ":" + std::to_string(spec.n_needles);
    return g;
  }
  const std::string hay_path = p["haystack"].get<std::string>(), needles_path = p["needles"].get<std::string>();
  const std::string hay = hay_path.empty() ? procedural_haystack(4000) : read_text(hay_path);
  std::vector<Needle> needles = default_needles();
  if (!needles_path.empty()) {
    Result<std::vector<Needle>> r = read_needles(needles_path);
    if (!r) throw InputError(r.error().message, r.error().code);
    needles = *r;
  }
  Result<std::vector<NeedleEpisode>> e = text_episodes(m, hay, needles, lengths, depths);
  if (!e) throw InputError(e.error().message, e.error().code);
  g.eps = std::move(*e);
  std::vector<int32_t> nl = m.tokenizer()->encode("\n", false);
  if (!nl.empty()) g.ro.stop_ids.push_back(nl.back());
  if (c.eos_token_id >= 0) g.ro.stop_ids.push_back(static_cast<int32_t>(c.eos_token_id));
  std::string ns;
  for (const auto& n : needles) ns += n.needle + "\x1f" + n.question + "\x1f" + n.answer + "\x1e";
  g.source = std::to_string(fnv1a(hay)) + ":" + std::to_string(fnv1a(ns));
  g.decode = [&m](const std::vector<int32_t>& ids) { return m.tokenizer()->decode(ids, true); };
  return g;
}

// One grid condition (unmasked or with heads masked), cell by cell; a live session stores each
// cell as an item run and, with resume, reads finished ones back.
struct Runner {
  const Model& model;
  RunSession& session;
  const Grid& grid;
  std::string key_prefix;
  bool items, resume;
  int64_t total = 0, done = 0, reused = 0;

  std::optional<EpisodeResult> read_back(const std::string& key) {
    Database& db = session.db();
    Result<std::optional<int64_t>> f = db.find_done_run("retrieval-item", key);
    if (!f || !f->has_value()) return std::nullopt;
    Result<at::Tensor> hs = db.get_tensor(**f, "head_score");
    Result<at::Tensor> oc = db.get_tensor(**f, "outcome");
    Result<at::Tensor> gen = db.get_tensor(**f, "generated");
    const ModelConfig& c = model.config();
    if (!hs || !oc || !gen || hs->dim() != 2 || hs->size(0) != c.n_layers || hs->size(1) != c.n_heads || oc->numel() != 2)
      return std::nullopt;
    EpisodeResult r;
    r.head_score = hs->to(at::kDouble);
    r.rouge = (*oc)[0].item<double>();
    r.correct = (*oc)[1].item<double>() > 0.5;
    for (int64_t i = 0; i < gen->numel(); ++i) r.generated.push_back(static_cast<int32_t>((*gen)[i].item<int64_t>()));
    return r;
  }

  void store_item(const NeedleEpisode& ep, const EpisodeResult& r, const std::vector<HeadRef>& masked,
                  const std::string& key, int64_t parent_run) {
    RunSpec s = session.spec();
    s.kind = "retrieval-item";
    s.label.clear();
    s.resume_key = key;
    s.params_json = nlohmann::json({{"length_index", ep.length_index}, {"depth_index", ep.depth_index},
                                    {"needle_index", ep.needle_index}, {"masked", heads_text(masked)}}).dump();
    RunResults rr;
    std::vector<int64_t> gen(r.generated.begin(), r.generated.end());
    rr.tensors.push_back({"head_score", r.head_score, R"({"kind":"head-score"})"});
    rr.tensors.push_back({"outcome", at::tensor({r.rouge, r.correct ? 1.0 : 0.0}, at::kDouble), R"({"fields":["rouge1","correct"]})"});
    rr.tensors.push_back({"generated", at::tensor(gen, at::kLong), "{}"});
    rr.links.push_back({0, "item-of", parent_run});
    Result<int64_t> id = session.db().store_run(s, rr);
    if (!id) throw InputError(id.error().message, id.error().code);
  }

  // nullopt when the session was cancelled.
  std::optional<std::vector<EpisodeResult>> run(const std::vector<HeadRef>& masked, int64_t parent_run) {
    std::vector<EpisodeResult> out;
    for (const NeedleEpisode& ep : grid.eps) {
      if (session.cancelled()) return std::nullopt;
      const std::string key = key_prefix + "|mask=" + heads_text(masked) + "|cell=" + std::to_string(ep.length_index) + "," +
                              std::to_string(ep.depth_index) + "," + std::to_string(ep.needle_index);
      std::optional<EpisodeResult> r = items && resume ? read_back(key) : std::nullopt;
      if (r) {
        ++reused;
      } else {
        r = run_needle_episode(model, ep, grid.ro, masked, masked.empty(), grid.decode);
        if (items) store_item(ep, *r, masked, key, parent_run);
      }
      out.push_back(std::move(*r));
      session.progress(++done, total);
    }
    return out;
  }
};

std::string grid_meta(const std::vector<int64_t>& lengths, const std::vector<double>& depths) {
  return nlohmann::json({{"kind", "grid"}, {"axes", {"length", "depth"}}, {"lengths", lengths}, {"depths", depths},
                         {"unit", "% correct"}}).dump();
}

}  // namespace

std::string heads_text(const std::vector<HeadRef>& hs) {
  std::string s;
  for (const auto& h : hs) s += (s.empty() ? "" : ",") + h.name();
  return s.empty() ? "none" : s;
}

const AnalysisSpec& retrieval_spec() {
  static const AnalysisSpec spec = [] {
    AnalysisSpec s;
    s.kind = "retrieval";
    s.summary = "retrieval heads from needle-in-a-haystack tests (Wu et al. 2024)";
    s.params = {
        {"lengths", ParamType::kIntList, nlohmann::json::array(), true,
         "context lengths a,b,c (default: 10, log-spaced, from min(256, max(n_ctx / 8, 32)) to n_ctx - 64)"},
        {"depths", ParamType::kInt, 10, false, "needle depths, evenly from 0% to 100%"},
        {"threshold", ParamType::kFloat, 0.1, false, "retrieval head iff score > threshold"},
        {"mask_top", ParamType::kInt, 0, true, "re-run with the top K retrieval heads masked (0: no)"},
        {"mask_random", ParamType::kInt, 0, false, "re-run with K random non-retrieval heads masked (seeds draws)"},
        {"seeds", ParamType::kInt, 3, false, "random draws for mask_random"},
        {"max_new", ParamType::kInt, 50, false, "greedy decode steps at most"},
        {"exact_match", ParamType::kBool, false, false, "correct iff the output starts with the answer (implied without a tokenizer)"},
        {"haystack", ParamType::kPath, "", false, "haystack text file (default: procedural filler text)"},
        {"needles", ParamType::kPath, "", false, "needles: JSONL of {\"needle\", \"question\", \"answer\"} (default: the built-in set)"},
        {"id_needles", ParamType::kInt, 2, false, "models without a tokenizer: token-id needles per cell"},
        {"resume", ParamType::kBool, false, false, "skip the cells already stored with the same parameters", kOnCli | kInGui},
    };
    auto bound = [&s](size_t i, double lo, double hi) { s.params[i].lo = lo, s.params[i].hi = hi; };
    bound(0, 8, 1 << 24);
    bound(1, 1, 1000);
    bound(3, 0, 4096);
    bound(4, 0, 4096);
    bound(5, 1, 1000);
    bound(6, 1, 1 << 20);
    bound(10, 1, 1000);
    s.check = [](const nlohmann::json& p, const ModelConfig* c, std::string* param) -> std::string {
      if (!c) return "";
      for (const nlohmann::json& l : p["lengths"])
        if (l.get<int64_t>() >= c->n_ctx)
          return *param = "lengths", "lengths: " + std::to_string(l.get<int64_t>()) + " must be in [8, " +
                                         std::to_string(c->n_ctx) + ") for this model";
      return "";
    };
    return s;
  }();
  return spec;
}

RetrievalRunOutcome run_retrieval(RunSession& session, const Model& m, nlohmann::json params) {
  const ModelConfig& c = m.config();
  std::string param;
  std::string e = complete_params(retrieval_spec(), kEverywhere, params, &c, &param);
  if (!e.empty()) fail_usage(e);
  if (params["lengths"].empty()) params["lengths"] = default_lengths_for(c.n_ctx);
  if (!m.tokenizer()) params["exact_match"] = true;
  const std::vector<int64_t> lengths = params["lengths"].get<std::vector<int64_t>>();
  const std::vector<double> depths = depth_fractions(params["depths"].get<int64_t>());
  const Grid grid = make_grid(m, params, lengths);

  RetrievalRunOutcome out;
  out.params = params;
  nlohmann::json stored = stored_params(retrieval_spec(), params);
  stored["source"] = grid.source;
  session.begin(m, "retrieval", stored);
  // A cell's result depends on the model, the episodes and the decoding, not on the thresholds or
  // the masking conditions: those parameters make the resume key.
  nlohmann::json cell = {{"lengths", lengths}, {"depths", params["depths"]}, {"max_new", params["max_new"]},
                         {"exact_match", params["exact_match"]}, {"source", grid.source}};
  const int64_t mask_top = params["mask_top"].get<int64_t>(), mask_random = params["mask_random"].get<int64_t>();
  const int64_t seeds = params["seeds"].get<int64_t>();
  const int64_t conditions = 1 + (mask_top > 0 ? 1 : 0) + (mask_random > 0 ? seeds : 0);
  const bool live = session.mode() == RunSession::Mode::kLive;
  Runner runner{m, session, grid, "m" + std::to_string(session.model_id()) + ":" + std::to_string(fnv1a(cell.dump())),
                live, live && params["resume"].get<bool>(), conditions * static_cast<int64_t>(grid.eps.size())};
  const int64_t n_l = static_cast<int64_t>(lengths.size()), n_d = static_cast<int64_t>(depths.size());
  const std::string meta = grid_meta(lengths, depths);

  out.cancelled = !session.conclude([&](std::string& reason) -> std::optional<RunResults> {
    reason = kCancelNote;
    std::optional<std::vector<EpisodeResult>> res = runner.run({}, session.run_id());
    if (!res) return std::nullopt;
    out.report = aggregate_retrieval(grid.eps, *res, n_l, n_d, c.n_layers, c.n_heads);
    RunResults rr;
    rr.scores.push_back(head_scores_from_tensor("retrieval_score", out.report.head_score));
    rr.tensors.push_back({"accuracy", out.report.accuracy, meta});
    return rr;
  });
  out.run_id = session.run_id();
  out.reused = runner.reused;
  if (out.cancelled) {
    out.cancelled_run = out.run_id;
    return out;
  }
  out.retrieval_heads = retrieval_heads(out.report.head_score, params["threshold"].get<double>());

  // The causal check: masked re-runs, each a run linked to the detection run.
  auto masked_run = [&](const std::string& name, const std::vector<HeadRef>& hs, RetrievalConditionResult* into) {
    RunSession masked(session);
    masked.begin(m, "retrieval-mask", {{"condition", name}, {"heads", heads_text(hs)}});
    RetrievalReport mr;
    const bool done = masked.conclude([&](std::string& reason) -> std::optional<RunResults> {
      reason = kCancelNote;
      std::optional<std::vector<EpisodeResult>> r = runner.run(hs, masked.run_id());
      if (!r) return std::nullopt;
      mr = aggregate_retrieval(grid.eps, *r, n_l, n_d, c.n_layers, c.n_heads);
      RunResults o;
      o.tensors.push_back({"accuracy", mr.accuracy, meta});
      o.links.push_back({0, "masked-from", session.link_id()});
      return o;
    });
    into->run_id = masked.run_id();
    if (!done) return false;
    into->heads.push_back(heads_text(hs));
    into->accuracy = into->accuracy.defined() ? into->accuracy + mr.accuracy : mr.accuracy;
    return true;
  };
  auto stop = [&](const RetrievalConditionResult& cd) {
    out.cancelled = true;
    out.cancelled_run = cd.run_id;
    out.reused = runner.reused;
    return out;
  };
  if (mask_top > 0) {
    std::vector<std::pair<HeadRef, double>> ranked = rank_heads(out.report.head_score);
    std::vector<HeadRef> hs;
    for (int64_t i = 0; i < mask_top && i < static_cast<int64_t>(ranked.size()); ++i) hs.push_back(ranked[static_cast<size_t>(i)].first);
    RetrievalConditionResult cd;
    cd.name = "top-" + std::to_string(mask_top);
    if (!masked_run(cd.name, hs, &cd)) return stop(cd);
    out.conditions.push_back(cd);
  }
  if (mask_random > 0) {
    RetrievalConditionResult cd;
    cd.name = "random-" + std::to_string(mask_random);
    for (int64_t s = 0; s < seeds; ++s)
      if (!masked_run(cd.name + " seed " + std::to_string(s),
                      random_heads(c.n_layers, c.n_heads, out.retrieval_heads, mask_random, static_cast<uint64_t>(s)), &cd))
        return stop(cd);
    cd.accuracy = cd.accuracy / static_cast<double>(seeds);
    out.conditions.push_back(cd);
  }
  out.reused = runner.reused;
  return out;
}

}  // namespace ms
