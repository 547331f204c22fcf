// A spliced SAE's cost: the GPT-2-small-shaped random model's forward (12 layers, d_model 768,
// vocab 50257; written once like bench_forward's) with a standard SAE of 16 x 768 features spliced
// at blocks.6.hook_resid_pre, against the plain forward, same tokens, best of reps. Spliced runs:
// without the error term (the reconstruction replaces the activation: one SAE pass), and with it
// and a hook on hook_sae_acts_post (the SAE pass plus the clean reconstruction: two passes).
// Usage: bench_sae_splice [--seq T] [--reps N] [--threads T].
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <vector>

#include "bench/bench_common.h"
#include "core/features/sae.h"
#include "core/features/sae_splice.h"
#include "hooks/activation_cache.h"

namespace fs = std::filesystem;
using namespace ms;
using namespace ms::bench;

int main(int argc, char** argv) {
  int64_t seq = 512;
  int reps = 5, threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seq" && i + 1 < argc) seq = std::atoll(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_sae_splice [--seq T] [--reps N] [--threads T]\n");
      return 2;
    }
  }
  if (threads > 0) at::set_num_threads(threads);
  print_machine("bench_sae_splice");
  const std::string dir = (fs::temp_directory_path() / "mechscope-bench-gpt2-small").string();
  if (!fs::exists(fs::path(dir) / "model.safetensors")) {
    RandomModelSpec s;
    s.arch = "gpt2";
    s.n_layers = 12;
    s.d_model = 768;
    s.n_heads = 12;
    s.d_vocab = 50257;
    s.n_ctx = 1024;
    Status st = write_random_model(s, dir, true);
    if (!st) {
      std::fprintf(stderr, "bench_sae_splice: %s\n", st.error().message.c_str());
      return 1;
    }
  }
  Result<std::unique_ptr<Model>> loaded = Model::load(dir);
  if (!loaded) {
    std::fprintf(stderr, "bench_sae_splice: %s\n", loaded.error().message.c_str());
    return 1;
  }
  const Model& m = **loaded;
  const int64_t d = m.config().d_model, d_sae = 16 * d;
  at::manual_seed(0);
  auto sae = std::make_shared<Sae>();
  sae->cfg.arch = SaeArch::kStandard;
  sae->cfg.d_in = sae->cfg.d_out = d;
  sae->cfg.d_sae = d_sae;
  sae->cfg.hook_name = "blocks.6.hook_resid_pre";
  sae->cfg.source = "(bench)";
  sae->w.W_enc = at::randn({d, d_sae}) / std::sqrt(static_cast<double>(d));
  sae->w.b_enc = at::zeros({d_sae}) - 0.5;
  sae->w.W_dec = at::randn({d_sae, d}) / std::sqrt(static_cast<double>(d_sae));
  sae->w.b_dec = at::zeros({d});
  c10::InferenceMode guard;
  std::vector<int32_t> ids(static_cast<size_t>(seq));
  for (int64_t i = 0; i < seq; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % m.config().d_vocab);
  at::Tensor tokens = m.tokens_tensor(ids);
  HookRegistry reg;
  SaeSplice splice(reg, sae, SpliceOptions{false});
  ForwardOptions fo;
  fo.hooks = &reg;
  HookRegistry reg2;
  SaeSplice splice2(reg2, sae, SpliceOptions{true});
  ActivationCache cache;
  reg2.add_forward(splice2.hook_names()[static_cast<int>(SaeStage::kActsPost)], cache_hook(cache));
  ForwardOptions fo2;
  fo2.hooks = &reg2;
  // The three interleaved, best of reps each (a shared machine's load drifts between blocks).
  std::vector<std::function<void()>> runs = {[&] { m.forward(tokens); }, [&] { m.forward(tokens, fo); },
                                             [&] { m.forward(tokens, fo2); }};
  std::vector<double> best(runs.size(), 1e30);
  for (auto& f : runs) f();  // warm up
  for (int r = 0; r < reps; ++r)
    for (size_t i = 0; i < runs.size(); ++i) {
      auto t0 = BenchClock::now();
      runs[i]();
      best[i] = std::min(best[i], seconds_since(t0));
    }
  const double plain = best[0], spliced = best[1], with_error = best[2];
  at::Tensor x = at::randn({seq, d});
  const double sae_pass = best_of(reps, [&] { sae->run(x); });
  const double gemm = 2.0 * 2.0 * static_cast<double>(seq) * d * d_sae;
  std::printf("GPT-2-small shape, T = %lld, SAE d_sae %lld at %s, best of %d:\n", static_cast<long long>(seq),
              static_cast<long long>(d_sae), sae->cfg.hook_name.c_str(), reps);
  std::printf("  plain forward                          %8.1f ms\n", plain * 1e3);
  std::printf("  spliced, no error term (1 SAE pass)    %8.1f ms  %.3fx (target <= 1.25x)\n", spliced * 1e3,
              spliced / plain);
  std::printf("  spliced, error term + acts hook (2)    %8.1f ms  %.3fx\n", with_error * 1e3, with_error / plain);
  std::printf("  one SAE pass alone [%lld, %lld]         %8.1f ms  (%.1f GFLOP/s on its two GEMMs)\n",
              static_cast<long long>(seq), static_cast<long long>(d), sae_pass * 1e3, gemm / sae_pass / 1e9);
  return 0;
}
