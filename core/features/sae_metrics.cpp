// L0, explained variance and CE loss recovered: per prompt one clean forward that caches the
// activation, one with the SAE spliced without its error term, one with the activation zeroed.
#include "core/features/sae_metrics.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "core/features/sae_splice.h"
#include "core/model/model.h"
#include "hooks/activation_cache.h"

namespace ms {
namespace {

// Summed next-token cross-entropy of one prompt's logits [1, T, V] (nats), in float64.
double summed_ce(const at::Tensor& logits, const at::Tensor& tokens) {
  const int64_t T = tokens.size(1);
  at::Tensor lp = at::log_softmax(logits[0].narrow(0, 0, T - 1).to(at::kDouble), -1);  // (T-1, V)
  at::Tensor next = tokens[0].narrow(0, 1, T - 1).to(lp.device()).unsqueeze(1);
  return -lp.gather(1, next).sum().item<double>();
}

}  // namespace

Result<SaeMetrics> sae_metrics(const Model& model, std::shared_ptr<const Sae> sae,
                               const std::vector<std::vector<int32_t>>& prompts) {
  return guard([&] {
    c10::InferenceMode guard;
    const SaeConfig& c = sae->cfg;
    const bool transcoder = sae_is_transcoder(c.arch);
    // What the reconstruction stands in for: the activation it replaces (a transcoder's output point).
    const std::string target_hook = transcoder ? c.hook_name_out : c.hook_name;
    if (prompts.empty()) fail_usage("sae metrics need at least one prompt");
    SaeMetrics m;
    double sq_err = 0, sum_sq = 0, l0 = 0, ce_clean = 0, ce_sae = 0, ce_zero = 0;
    at::Tensor sum_x = at::zeros({c.d_out}, at::kDouble);
    at::Tensor fired = at::zeros({c.d_sae}, at::kBool);
    for (const auto& ids : prompts) {
      if (ids.size() < 2) fail_usage("every prompt needs at least 2 tokens for the CE loss");
      at::Tensor tokens = model.tokens_tensor(ids);  // (1, T)
      // Clean run, caching the activation.
      HookRegistry reg;
      ActivationCache cache;
      reg.add_forward(c.hook_name, cache_hook(cache));
      if (transcoder) reg.add_forward(target_hook, cache_hook(cache));
      ForwardOptions fo;
      fo.hooks = &reg;
      ce_clean += summed_ce(model.forward(tokens, fo), tokens);
      at::Tensor x = sae->to_input(cache.at(c.hook_name)).to(at::kFloat).reshape({-1, c.d_in});  // (T, d_in)
      SaePass p = sae->run(x);
      at::Tensor target = transcoder ? cache.at(target_hook).to(at::kFloat).reshape({-1, c.d_out}) : x;
      at::Tensor xd = target.to(at::kDouble), rd = p.out.to(at::kDouble);
      sq_err += (xd - rd).pow(2).sum().item<double>();
      sum_sq += xd.pow(2).sum().item<double>();
      sum_x += xd.sum(0).cpu();
      at::Tensor active = p.acts_post > 0;
      l0 += active.sum().item<double>();
      fired |= active.any(0).cpu();
      m.n_tokens += x.size(0);
      // Spliced without the error term.
      {
        HookRegistry sreg;
        SaeSplice splice(sreg, sae, SpliceOptions{false});
        ForwardOptions so;
        so.hooks = &sreg;
        ce_sae += summed_ce(model.forward(tokens, so), tokens);
      }
      // Zero-ablated (only the SAE's head when it reads one).
      {
        HookRegistry zreg;
        Selection sel;
        if (c.hook_head_index >= 0 && !transcoder) sel.heads = {c.hook_head_index};
        zreg.add_forward(target_hook, zero_ablate_hook(sel));
        ForwardOptions zo;
        zo.hooks = &zreg;
        ce_zero += summed_ce(model.forward(tokens, zo), tokens);
      }
      m.n_predictions += static_cast<int64_t>(ids.size()) - 1;
      ++m.n_prompts;
    }
    const double n = static_cast<double>(m.n_tokens);
    const double total_var = sum_sq - sum_x.pow(2).sum().item<double>() / n;  // sum |x - mean|^2
    m.explained_variance = total_var > 0 ? 1.0 - sq_err / total_var : 0.0;
    m.mse = sq_err / (n * static_cast<double>(c.d_out));
    m.l0 = l0 / n;
    m.dead_features = c.d_sae - fired.sum().item<int64_t>();
    const double np = static_cast<double>(m.n_predictions);
    m.ce_clean = ce_clean / np;
    m.ce_spliced = ce_sae / np;
    m.ce_zero_ablated = ce_zero / np;
    const double denom = m.ce_zero_ablated - m.ce_clean;
    m.ce_loss_recovered = denom != 0 ? (m.ce_zero_ablated - m.ce_spliced) / denom : 0.0;
    return m;
  });
}

}  // namespace ms
