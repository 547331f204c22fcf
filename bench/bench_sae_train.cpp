// SAE training throughput at GPT-2-small width (d_in 768, d_sae 16 x 768): seconds per step and
// the five GEMMs' FLOPs a step (encoder, decoder, and the three gradient products) as a fraction
// of the machine's f32 GEMM peak measured in the same run. Usage: bench_sae_train [--batch B]
// [--steps N] [--threads T] [--arch standard|topk|jumprelu].
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/bench_common.h"
#include "core/features/activation_store.h"
#include "core/features/sae_train.h"

using namespace ms;
using namespace ms::bench;

int main(int argc, char** argv) {
  int64_t batch = 1024, steps = 5, d_in = 768, d_sae = 16 * 768;
  int threads = 0;
  std::string arch_name = "standard";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc) batch = std::atoll(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--arch" && i + 1 < argc) arch_name = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_sae_train [--batch B] [--steps N] [--threads T] [--arch A]\n");
      return 2;
    }
  }
  if (threads > 0) at::set_num_threads(threads);
  print_machine("bench_sae_train");
  Result<SaeArch> arch = parse_train_arch(arch_name);
  if (!arch) {
    std::fprintf(stderr, "bench_sae_train: %s\n", arch.error().message.c_str());
    return 2;
  }
  const double peak = gemm_peak_gflops(3);
  at::manual_seed(0);
  auto store = ActivationStore::from_tensors(at::randn({8 * batch, d_in}), at::Tensor(), {});
  auto time_steps = [&](int64_t n) {
    SaeTrainOptions o;
    o.arch = *arch;
    o.d_sae = d_sae;
    o.k = 64;
    o.steps = n;
    o.batch_size = batch;
    o.log_every = 1000000;
    auto t0 = BenchClock::now();
    Result<SaeTrainResult> r = train_sae(*store, o);
    if (!r) {
      std::fprintf(stderr, "bench_sae_train: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    return seconds_since(t0);
  };
  time_steps(1);  // warm up (allocations, BLAS buffers)
  double best_step = 1e30;
  for (int rep = 0; rep < 2; ++rep) {  // (n + 1 steps) - (1 step): the steps alone, without the init
    const double one = time_steps(1), many = time_steps(steps + 1);
    best_step = std::min(best_step, (many - one) / static_cast<double>(steps));
  }
  const double flops = 5.0 * 2.0 * static_cast<double>(batch) * static_cast<double>(d_in) * static_cast<double>(d_sae);
  const double rate = flops / best_step / 1e9;
  std::printf("%s SAE d_in %lld, d_sae %lld, batch %lld: %.3f s/step, %.0f tokens/s; GEMM work %.1f GFLOP/step at "
              "%.1f GFLOP/s = %.0f%% of the measured GEMM peak %.1f GFLOP/s (target >= 60%%)\n",
              arch_name.c_str(), static_cast<long long>(d_in), static_cast<long long>(d_sae),
              static_cast<long long>(batch), best_step, static_cast<double>(batch) / best_step, flops / 1e9, rate,
              100.0 * rate / peak, peak);
  return 0;
}
