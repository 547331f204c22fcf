// Activation patching grids, path patching over the edge graph, and direct logit attribution.
#include "core/analysis/circuits/patching.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>

#include "hooks/activation_cache.h"
#include "hooks/hook_names.h"

namespace ms {

Result<PatchGrid> activation_patching(const Model& model, const TaskPairs& task, const PatchOptions& opts,
                                      const CircuitProgress& progress, const std::atomic<bool>* cancel) {
  Result<Result<PatchGrid>> out = guard([&]() -> Result<PatchGrid> {
    at::NoGradGuard no_grad;
    const ModelConfig& c = model.config();
    const std::string& w = opts.what;
    const bool by_pos = w == "resid_pre" || w == "attn_out" || w == "mlp_out";
    const bool by_head = w == "z" || w == "q" || w == "k" || w == "v" || w == "pattern";
    if (!by_pos && !by_head)
      return Error{ErrorCode::kUsage, "--what '" + w + "': expected resid_pre, attn_out, mlp_out, z, q, k, v or pattern"};
    if (w == "mlp_out" && c.attn_only()) return Error{ErrorCode::kUsage, "--what mlp_out: the model has no MLPs"};
    if (opts.per_position && w != "z") return Error{ErrorCode::kUsage, "per-position patching is for --what z"};
    const int64_t L = c.n_layers, T = task.seq_len();
    const int64_t n_heads = (w == "k" || w == "v") ? c.n_kv_heads : c.n_heads;
    const at::Tensor& base = opts.self_patch ? task.clean : task.corrupted;
    // Cache the clean run at every layer's hook.
    ActivationCache clean;
    {
      HookRegistry reg;
      reg.add_forward("blocks.*." + std::string(by_pos ? "hook_" : "attn.hook_") + w, cache_hook(clean));
      ForwardOptions fo;
      fo.hooks = &reg;
      model.forward(task.clean, fo);
    }
    PatchGrid grid;
    grid.what = w;
    grid.metric_clean = task_metric(task, model.forward(task.clean)).item<double>();
    grid.metric_corrupted = task_metric(task, model.forward(task.corrupted)).item<double>();
    std::vector<int64_t> shape;
    if (by_pos) grid.axes = {"layer", "position"}, shape = {L, T};
    else if (opts.per_position) grid.axes = {"layer", "head", "position"}, shape = {L, n_heads, T};
    else grid.axes = {"layer", "head"}, shape = {L, n_heads};
    grid.raw = at::full(shape, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
    const int64_t inner = by_pos ? T : opts.per_position ? n_heads * T : n_heads;
    const int64_t total = L * inner;
    for (int64_t cell = 0; cell < total; ++cell) {
      if (cancel && *cancel) break;
      const int64_t l = cell / inner, r = cell % inner;
      Selection sel;
      if (by_pos) sel.positions = {r};
      else if (opts.per_position) sel.heads = {r / T}, sel.positions = {r % T};
      else sel.heads = {r};
      HookRegistry reg;
      reg.add_forward(get_act_name(w, static_cast<int>(l)), patch_hook(clean, sel));
      ForwardOptions fo;
      fo.hooks = &reg;
      double m = task_metric(task, model.forward(base, fo)).item<double>();
      grid.raw.view(-1)[cell] = m;
      if (progress) progress(cell + 1, total);
    }
    grid.values = (grid.raw - grid.metric_corrupted) / (grid.metric_clean - grid.metric_corrupted);
    return grid;
  });
  if (!out) return out.error();
  return std::move(out).value();
}

at::Tensor path_patching(const Model& model, const CircuitGraph& g, const TaskPairs& task, const TaskRuns& runs,
                         const std::vector<int>& receivers) {
  at::NoGradGuard no_grad;
  const ModelConfig& c = model.config();
  at::Tensor out = at::full({c.n_layers, c.n_heads}, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
  at::Tensor delta = runs.corrupted_out - runs.clean_out;
  int min_up = g.n_sources();
  for (int t : receivers) min_up = std::min(min_up, g.targets()[static_cast<size_t>(t)].n_upstream);
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (int64_t h = 0; h < c.n_heads; ++h) {
      const int s = g.head_source(static_cast<int>(l), static_cast<int>(h));
      if (s >= min_up) continue;
      // The sender's direct path: every receiver reads clean + (corrupted - clean) of the sender;
      // nothing upstream of a receiver changes, downstream is recomputed.
      EdgeRunOptions o;
      o.offsets = [&](const TargetGroup& grp, const std::vector<at::Tensor>&) -> at::Tensor {
        at::Tensor off;
        for (int t : receivers) {
          if (t < grp.first || t >= grp.first + grp.count) continue;
          at::Tensor d = delta[s];
          if (grp.kind == TargetKind::kMlp || grp.kind == TargetKind::kLogits) return d;
          if (!off.defined()) off = at::zeros({d.size(0), d.size(1), grp.count, d.size(2)}, d.options());
          off.select(2, t - grp.first).copy_(d);
        }
        return off;
      };
      double m = task_metric(task, run_edge_forward(model, g, task.clean, o)).item<double>();
      out[l][h] = (m - runs.metric_corrupted) / (runs.metric_clean - runs.metric_corrupted);
    }
  return out;
}

DlaResult direct_logit_attribution(const Model& model, const TaskPairs& task) {
  at::NoGradGuard no_grad;
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  ActivationCache cache;
  HookRegistry reg;
  for (const char* n : {"hook_embed", "hook_pos_embed", "blocks.*.attn.hook_result", "blocks.*.hook_attn_out",
                        "blocks.*.hook_mlp_out", "ln_final.hook_scale", "ln_final.hook_normalized",
                        "blocks.*.ln1_post.hook_scale"})
    reg.add_forward(n, cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &reg;
  at::Tensor logits = model.forward(task.clean, fo);
  const int64_t N = task.n();
  at::Tensor pos = at::tensor(task.answer_pos, at::kLong);
  at::Tensor rows = at::arange(N, at::kLong);
  auto at_answer = [&](const at::Tensor& x) { return x.to(at::kDouble).index({rows, pos}); };  // (N, ...)
  // The unembedding direction per pair, (N, d).
  at::Tensor wu = w.w_u.to(at::kDouble);
  at::Tensor dir;
  at::Tensor bu_diff = at::zeros({N}, at::kDouble);
  if (task.metric == MetricKind::kProbDiff) {
    std::vector<at::Tensor> dirs;
    for (int64_t i = 0; i < N; ++i) {
      std::vector<int64_t> hi, lo;
      for (int k = 0; k < 100; ++k)
        if (task.year_ids[k] >= 0) (k > task.yy[i] ? hi : lo).push_back(task.year_ids[k]);
      at::Tensor a = hi.empty() ? at::zeros({c.d_model}, at::kDouble) : wu.index_select(0, at::tensor(hi)).mean(0);
      at::Tensor b = lo.empty() ? at::zeros({c.d_model}, at::kDouble) : wu.index_select(0, at::tensor(lo)).mean(0);
      dirs.push_back(a - b);
      if (w.b_u.defined()) {
        at::Tensor bu = w.b_u.to(at::kDouble);
        double x = hi.empty() ? 0.0 : bu.index_select(0, at::tensor(hi)).mean().item<double>();
        double y = lo.empty() ? 0.0 : bu.index_select(0, at::tensor(lo)).mean().item<double>();
        bu_diff[i] = x - y;
      }
    }
    dir = at::stack(dirs);
  } else {
    at::Tensor a = at::tensor(std::vector<int64_t>(task.answer.begin(), task.answer.end()), at::kLong);
    at::Tensor d = at::tensor(std::vector<int64_t>(task.distractor.begin(), task.distractor.end()), at::kLong);
    // A negative distractor: the answer's own logit (nothing subtracted).
    at::Tensor has_d = (d >= 0).to(at::kDouble);  // (N)
    d = d.clamp_min(0);
    dir = wu.index_select(0, a) - wu.index_select(0, d) * has_d.unsqueeze(1);
    if (w.b_u.defined())
      bu_diff = w.b_u.to(at::kDouble).index_select(0, a) - w.b_u.to(at::kDouble).index_select(0, d) * has_d;
  }
  at::Tensor bias = bu_diff.clone();
  if (w.ln_f_b.defined()) bias = bias + (dir * w.ln_f_b.to(at::kDouble)).sum(-1);
  if (w.ln_f_w.defined()) dir = dir * w.ln_f_w.to(at::kDouble);
  at::Tensor scale = at_answer(cache.at("ln_final.hook_scale")).view({N, 1});  // (N, 1)
  // apply_ln_to_stack: centre (LayerNorm only), divide by the cached scale, project.
  auto project = [&](at::Tensor comp) {  // comp (N, d) -> mean over pairs
    if (c.norm == NormKind::kLayerNorm) comp = comp - comp.mean(-1, true);
    return ((comp / scale) * dir).sum(-1).mean().item<double>();
  };
  DlaResult r;
  at::Tensor embed = at_answer(cache.at("hook_embed"));
  if (cache.contains("hook_pos_embed")) embed = embed + at_answer(cache.at("hook_pos_embed"));
  r.components.push_back("embed");
  r.per_component.push_back(project(embed));
  r.per_head = at::zeros({c.n_layers, c.n_heads}, at::kDouble);
  for (int l = 0; l < static_cast<int>(c.n_layers); ++l) {
    at::Tensor res = at_answer(cache.at(get_act_name("result", l)));  // (N, H, d)
    if (c.post_norm) {  // through ln1_post, its scale frozen: the heads then sum to hook_attn_out
      const std::string sname = "blocks." + std::to_string(l) + ".ln1_post.hook_scale";
      at::Tensor post_scale = at_answer(cache.at(sname)).view({N, 1, 1});
      res = res * w.layers[static_cast<size_t>(l)].ln1_post_w.to(at::kDouble) / post_scale;
    }
    for (int64_t h = 0; h < c.n_heads; ++h) r.per_head[l][h] = project(res.select(1, h));
    r.components.push_back("attn" + std::to_string(l));
    r.per_component.push_back(project(at_answer(cache.at(get_act_name("attn_out", l)))));
    if (!c.attn_only()) {
      r.components.push_back("mlp" + std::to_string(l));
      r.per_component.push_back(project(at_answer(cache.at(get_act_name("mlp_out", l)))));
    }
  }
  r.bias_terms = bias.mean().item<double>();
  // The logits the attributions add up to: with final soft-capping, those before the cap (RMSNorm's
  // hook_normalized is before the weight).
  at::Tensor lin = logits;
  if (c.final_softcap > 0) {
    at::Tensor xf = cache.at("ln_final.hook_normalized").to(at::kDouble);
    if (w.ln_f_w.defined()) xf = xf * w.ln_f_w.to(at::kDouble);
    lin = at::matmul(xf, wu.t());
    if (w.b_u.defined()) lin = lin + w.b_u.to(at::kDouble);
    if (task.metric == MetricKind::kLogitDiff) r.capped_logit_diff = task_metric(task, logits).item<double>();
  }
  if (task.metric == MetricKind::kProbDiff) {
    // The logit difference along the same direction: mean logit of later years minus earlier.
    at::Tensor x = at_answer(lin.to(at::kDouble));
    double acc = 0;
    for (int64_t i = 0; i < N; ++i) {
      std::vector<int64_t> hi, lo;
      for (int k = 0; k < 100; ++k)
        if (task.year_ids[k] >= 0) (k > task.yy[i] ? hi : lo).push_back(task.year_ids[k]);
      double a = hi.empty() ? 0.0 : x[i].index_select(0, at::tensor(hi)).mean().item<double>();
      double b = lo.empty() ? 0.0 : x[i].index_select(0, at::tensor(lo)).mean().item<double>();
      acc += a - b;
    }
    r.logit_diff = acc / static_cast<double>(N);
  } else if (std::all_of(task.distractor.begin(), task.distractor.end(), [](int32_t d) { return d >= 0; })) {
    r.logit_diff = task_metric(task, lin.to(at::kFloat)).item<double>();
  } else {  // some pairs score the answer's own logit
    at::Tensor x = at_answer(lin);  // (N, V)
    double acc = 0;
    for (int64_t i = 0; i < N; ++i) {
      const int32_t d = task.distractor[static_cast<size_t>(i)];
      acc += x[i][task.answer[static_cast<size_t>(i)]].item<double>() - (d >= 0 ? x[i][d].item<double>() : 0.0);
    }
    r.logit_diff = acc / static_cast<double>(N);
  }
  if (c.post_norm)
    r.notes.push_back("post-norm model: each head's output is taken through ln1_post with the norm's scale "
                      "frozen at the clean run (as the final norm's is), so the heads of a layer sum to its "
                      "attention output");
  if (c.final_softcap > 0)
    r.notes.push_back("final logit soft-capping (cap " + std::to_string(c.final_softcap) +
                      "): attributions and logit_diff are of the logits before the cap" +
                      (task.metric == MetricKind::kLogitDiff
                           ? "; the model's capped logit difference is " + std::to_string(r.capped_logit_diff)
                           : std::string()));
  return r;
}

}  // namespace ms
