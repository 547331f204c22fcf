// Feature dashboards over a large corpus without holding its activations: 1M tokens (8192
// prompts of 128 random tokens after BOS) through the default model (resources/models/default:
// GPT-2 style, d_model 128, 4 layers) and a random 16384-feature SAE at blocks.2.hook_resid_pre
// whose encoder biases make about 0.5% of features fire per token. Prints the throughput and the
// peak resident memory against the requirement: the model's and SAE's weights + 2 GiB.
// Usage: bench_sae_dashboard [tokens (default 1048576)] [d_sae (default 16384)]
#include <c10/core/InferenceMode.h>

#include <random>

#include "bench/bench_common.h"
#include "core/base/malloc_reuse.h"
#include "bench_paths.h"
#include "core/features/sae_dashboard.h"
#include "hooks/activation_cache.h"

using namespace ms;

int main(int argc, char** argv) {
  keep_freed_memory_for_reuse();  // as mechscope does (core/base/malloc_reuse.h)
  huge_pages_for_large_tensors();  // large tensors on transparent huge pages (core/base/malloc_reuse.h)
  const int64_t n_tokens = argc > 1 ? std::atoll(argv[1]) : (int64_t{1} << 20);
  const int64_t d_sae = argc > 2 ? std::atoll(argv[2]) : 16384;
  bench::print_machine("bench_sae_dashboard");
  auto loaded = Model::load(std::string(MECHSCOPE_SOURCE_DIR) + "/resources/models/default");
  if (!loaded) {
    std::fprintf(stderr, "bench_sae_dashboard: %s\n", loaded.error().message.c_str());
    return 1;
  }
  std::unique_ptr<Model> m = std::move(*loaded);
  const ModelConfig& c = m->config();
  const int64_t T = c.n_ctx;
  const int64_t n_prompts = (n_tokens + T - 1) / T;
  std::mt19937 rng(1);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n_prompts));
  for (auto& p : prompts) {
    p.resize(static_cast<size_t>(T));
    p[0] = c.bos_token_id >= 0 ? c.bos_token_id : 0;
    for (int64_t i = 1; i < T; ++i) p[static_cast<size_t>(i)] = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.d_vocab));
  }
  // The SAE: random directions; each feature's bias puts its threshold at the 99.5th percentile of
  // its pre-activation over a sample of the corpus.
  Sae sae;
  sae.cfg.d_in = sae.cfg.d_out = c.d_model;
  sae.cfg.d_sae = d_sae;
  sae.cfg.hook_name = "blocks.2.hook_resid_pre";
  sae.cfg.source = "bench-random-sae";
  at::manual_seed(2);
  sae.w.W_enc = at::randn({c.d_model, d_sae}) / std::sqrt(static_cast<double>(c.d_model));
  sae.w.W_dec = sae.w.W_enc.t().contiguous();
  sae.w.b_dec = at::zeros({c.d_model});
  {
    c10::InferenceMode guard;
    std::vector<int32_t> flat;
    HookRegistry reg;
    ActivationCache cache;
    reg.add_forward(sae.cfg.hook_name, cache_hook(cache));
    ForwardOptions fo;
    fo.hooks = &reg;
    std::vector<at::Tensor> xs;
    for (int i = 0; i < 16; ++i) {
      cache = ActivationCache();
      m->forward(m->tokens_tensor(prompts[static_cast<size_t>(i)]), fo);
      xs.push_back(cache.at(sae.cfg.hook_name)[0].narrow(0, 1, T - 1));
    }
    at::Tensor pre = at::matmul(at::cat(xs, 0), sae.w.W_enc);  // (2032, d_sae)
    sae.w.b_enc = -std::get<0>(at::kthvalue(pre, static_cast<int64_t>(0.995 * static_cast<double>(pre.size(0))), 0));
  }
  double weight_bytes = 0;
  for (const auto& kv : m->weights().named()) weight_bytes += static_cast<double>(kv.second.nbytes());
  const double model_bytes = weight_bytes;
  weight_bytes += static_cast<double>(sae.w.W_enc.nbytes() + sae.w.W_dec.nbytes() + sae.w.b_enc.nbytes());
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const double rss_before = bench::peak_rss_gib();

  DashboardOptions o;  // every feature, top 20, context 8, 32 bins, 10 logits
  DashboardStats st;
  int64_t last_pct = -1;
  auto t0 = bench::BenchClock::now();
  std::vector<FeatureCard> cards = feature_dashboards(*m, sae, prompts, o, [&](int64_t d, int64_t n) {
    const int64_t pct = 100 * d / n;
    if (pct / 10 != last_pct / 10) {
      std::fprintf(stderr, "  %3lld%% (%.0f s, peak RSS %.2f GiB)\n", static_cast<long long>(pct), bench::seconds_since(t0),
                   bench::peak_rss_gib());
      last_pct = pct;
    }
  }, nullptr, &st);
  const double secs = bench::seconds_since(t0);
  const double rss = bench::peak_rss_gib();
  int64_t dead = 0, examples = 0;
  double l0 = 0;
  for (const FeatureCard& card : cards) {
    dead += card.n_firing == 0;
    examples += static_cast<int64_t>(card.examples.size());
    l0 += static_cast<double>(card.n_firing);
  }
  l0 /= static_cast<double>(std::max<int64_t>(1, st.n_tokens));
  const double limit = weight_bytes / gib + 2.0;
  std::printf("corpus: %lld prompts x %lld tokens = %lld positions counted (BOS left out); SAE d_sae %lld at %s\n",
              static_cast<long long>(n_prompts), static_cast<long long>(T), static_cast<long long>(st.n_tokens),
              static_cast<long long>(d_sae), sae.cfg.hook_name.c_str());
  std::printf("cards: %zu (%lld dead), %lld examples, mean L0 %.1f; %lld batches of up to %lld positions\n", cards.size(),
              static_cast<long long>(dead), static_cast<long long>(examples), l0, static_cast<long long>(st.n_batches),
              static_cast<long long>(st.peak_batch_tokens));
  std::printf("time: %.1f s, %.0f tokens/s, %.3g feature-activations/s\n", secs,
              static_cast<double>(n_prompts * T) / secs, static_cast<double>(n_prompts * T) * static_cast<double>(d_sae) / secs);
  std::printf("peak RSS: %.3f GiB (%.3f GiB before the pass); weights: model %.4f GiB + SAE %.4f GiB; "
              "limit weights + 2 GiB = %.3f GiB: %s\n",
              rss, rss_before, model_bytes / gib, (weight_bytes - model_bytes) / gib, limit, rss <= limit ? "PASS" : "FAIL");
  return rss <= limit ? 0 : 2;
}
