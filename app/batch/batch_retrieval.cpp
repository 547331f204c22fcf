// Batch adapter for retrieval heads (core/analysis/retrieval/retrieval.h): one item = one model at one context
// length, every depth and needle; stores the per-head scores, the accuracy row over depths and,
// with mask_top, the accuracy with the top heads masked (Wu et al.'s causal check).
#include <ATen/ATen.h>

#include <fstream>
#include <sstream>

#include "app/batch/batch_analyses.h"
#include "core/analysis/retrieval/needle.h"
#include "core/analysis/retrieval/retrieval.h"
#include "runs/analysis_runs.h"

namespace ms::app::batch {
namespace {

ItemOutput run_retrieval(ItemContext& ctx) {
  const nlohmann::json& p = ctx.item.params;
  const Model& m = ctx.model;
  const ModelConfig& c = m.config();
  const int64_t length = p["length"].get<int64_t>(), n_depths = p["depths"].get<int64_t>();
  const int64_t mask_top = p["mask_top"].get<int64_t>();
  std::vector<double> depths = depth_fractions(n_depths);
  RetrievalOptions ro;
  ro.max_new = p["max_new"].get<int64_t>();
  ro.threshold = p["threshold"].get<double>();
  ro.exact_match = p["exact_match"].get<bool>() || !m.tokenizer();
  std::vector<NeedleEpisode> eps;
  std::function<std::string(const std::vector<int32_t>&)> decode;
  if (m.tokenizer()) {
    std::string hay = procedural_haystack(4000);
    if (!p["haystack"].get<std::string>().empty()) {
      std::ifstream in(p["haystack"].get<std::string>(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      hay = ss.str();
    }
    std::vector<Needle> needles = default_needles();
    if (!p["needles"].get<std::string>().empty()) {
      Result<std::vector<Needle>> r = read_needles(p["needles"].get<std::string>());
      if (!r) throw InputError(r.error().message, r.error().code);
      needles = *r;
    }
    Result<std::vector<NeedleEpisode>> e = text_episodes(m, hay, needles, {length}, depths);
    if (!e) throw InputError(e.error().message, e.error().code);
    eps = std::move(*e);
    std::vector<int32_t> nl = m.tokenizer()->encode("\n", false);
    if (!nl.empty()) ro.stop_ids.push_back(nl.back());
    if (c.eos_token_id >= 0) ro.stop_ids.push_back(static_cast<int32_t>(c.eos_token_id));
    decode = [&m](const std::vector<int32_t>& ids) { return m.tokenizer()->decode(ids, true); };
  } else {
    IdEpisodeSpec spec;
    spec.vocab = c.d_vocab;
    spec.n_needles = p["id_needles"].get<int64_t>();
    if (length + spec.needle_len > c.n_ctx)
      throw InputError("length " + std::to_string(length) + " leaves no room to decode the needle (n_ctx " +
                       std::to_string(c.n_ctx) + ")");
    eps = id_episodes(spec, {length}, depths);
  }
  const int64_t total = static_cast<int64_t>(eps.size()) * (mask_top > 0 ? 2 : 1);
  int64_t done = 0;
  auto pass = [&](const std::vector<HeadRef>& masked) {
    std::vector<EpisodeResult> res;
    for (const NeedleEpisode& ep : eps) {
      if (ctx.cancel && *ctx.cancel) return res;
      res.push_back(run_needle_episode(m, ep, ro, masked, masked.empty(), decode));
      if (ctx.progress) ctx.progress(++done, total);
    }
    return res;
  };
  ItemOutput out;
  std::vector<EpisodeResult> base = pass({});
  if (base.size() < eps.size()) return out;
  RetrievalReport rep = aggregate_retrieval(eps, base, 1, n_depths, c.n_layers, c.n_heads);
  std::string meta = nlohmann::json({{"kind", "grid"}, {"axes", {"length", "depth"}}, {"lengths", {length}},
                                     {"depths", depths}, {"unit", "% correct"}}).dump();
  out.results.scores.push_back(head_scores_from_tensor("retrieval_score", rep.head_score));
  out.results.tensors.push_back({"accuracy", rep.accuracy, meta});
  std::vector<int64_t> outcome;
  for (const auto& r : base) outcome.push_back(r.correct ? 1 : 0);
  out.results.tensors.push_back({"correct", at::tensor(outcome, at::kLong), R"({"kind":"per-episode"})"});
  double acc = rep.accuracy.mean().item<double>();
  out.summary = {{"accuracy", acc}, {"tests", rep.n_tests}};
  if (mask_top > 0) {
    std::vector<std::pair<HeadRef, double>> ranked = rank_heads(rep.head_score);
    std::vector<HeadRef> hs;
    for (int64_t i = 0; i < mask_top && i < static_cast<int64_t>(ranked.size()); ++i)
      hs.push_back(ranked[static_cast<size_t>(i)].first);
    const std::string names = heads_text(hs);
    std::vector<EpisodeResult> masked = pass(hs);
    if (masked.size() < eps.size()) return ItemOutput{};
    RetrievalReport mr = aggregate_retrieval(eps, masked, 1, n_depths, c.n_layers, c.n_heads);
    nlohmann::json mm = nlohmann::json::parse(meta);
    mm["masked"] = names;
    out.results.tensors.push_back({"accuracy_masked_top", mr.accuracy, mm.dump()});
    out.summary["masked"] = names;
    out.summary["accuracy_masked"] = mr.accuracy.mean().item<double>();
  }
  return out;
}

}  // namespace

Analysis retrieval_analysis() {
  Analysis a;
  a.kind = "retrieval";
  a.summary = "retrieval heads from needle-in-a-haystack tests at one context length per item";
  a.params = {
      {"length", ParamType::kInt, nullptr, true, "context length in tokens (a list: one item per length)"},
      {"depths", ParamType::kInt, 3, false, "needle depths, evenly from 0% to 100%"},
      {"max_new", ParamType::kInt, 50, false, "greedy decode steps at most"},
      {"threshold", ParamType::kFloat, 0.1, false, "retrieval head iff score > threshold"},
      {"mask_top", ParamType::kInt, 0, true, "also run with the top K heads masked (0: no)"},
      {"exact_match", ParamType::kBool, false, false, "correct iff the output starts with the answer"},
      {"haystack", ParamType::kPath, "", false, "haystack text file (default: procedural filler)"},
      {"needles", ParamType::kPath, "", false, "needles JSONL (default: the built-in set)"},
      {"id_needles", ParamType::kInt, 2, false, "models without a tokenizer: token-id needles per cell"},
  };
  a.check = [](const nlohmann::json& p, const ModelConfig& c, std::string* param) -> std::string {
    int64_t l = p["length"].get<int64_t>();
    if (l < 8 || l >= c.n_ctx)
      return *param = "length", "length " + std::to_string(l) + " must be in [8, " + std::to_string(c.n_ctx) + ") for this model";
    if (p["depths"].get<int64_t>() < 1) return *param = "depths", "depths must be at least 1";
    if (p["max_new"].get<int64_t>() < 1) return *param = "max_new", "max_new must be at least 1";
    if (p["mask_top"].get<int64_t>() < 0) return *param = "mask_top", "mask_top must not be negative";
    if (p["id_needles"].get<int64_t>() < 1) return *param = "id_needles", "id_needles must be at least 1";
    return "";
  };
  a.estimate = [](const nlohmann::json& p, const ItemShape& s) {
    const ModelConfig& c = *s.config;
    int64_t t = std::min(c.n_ctx, p["length"].get<int64_t>() + p["max_new"].get<int64_t>());
    double episodes = static_cast<double>(p["depths"].get<int64_t>()) * static_cast<double>(std::max<int64_t>(4, p["id_needles"].get<int64_t>()));
    double per = forward_flops(c, s.n_params, t) + static_cast<double>(p["max_new"].get<int64_t>()) * forward_flops(c, s.n_params, 1);
    Estimate e;
    e.activation_bytes = forward_activation_bytes(c, t);
    e.flops = episodes * per * (p["mask_top"].get<int64_t>() > 0 ? 2 : 1);
    return e;
  };
  a.run = run_retrieval;
  return a;
}

}  // namespace ms::app::batch
