// Peak memory, load time and forward speed of a large family model (issue [3/7]): a Gemma-2-2B-
// shaped random model (26 layers, d_model 2304, 8 heads of 256, 4 KV heads, d_mlp 9216, vocab
// 256000; bf16 safetensors written by `zoo random`) loaded and run on a 1,024-token prompt. One
// configuration per process, so that the peak resident memory is that configuration's:
//   bench_family_memory [--model DIR] [--threads N] [--dtype f32|bf16] [--tokens T]
// (without --model the model is written once under the temp folder). The bound checked, for either
// compute dtype: peak RSS at most the f32 weights + 1.5 GiB (issue [3/7]).
#include <filesystem>

#include "bench/bench_common.h"

using namespace ms;

int main(int argc, char** argv) {
  std::string dir, dtype = "f32";
  int threads = 0;
  int64_t T = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--model") dir = argv[i + 1];
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--dtype") dtype = argv[i + 1];
    else if (a == "--tokens") T = std::atoll(argv[i + 1]);
  }
  if (threads > 0) at::set_num_threads(threads);
  bench::print_machine("bench_family_memory");
  if (dir.empty()) {
    dir = (std::filesystem::temp_directory_path() / "mechscope-bench-gemma2-2b").string();
    if (!std::filesystem::exists(std::filesystem::path(dir) / "model.safetensors")) {
      RandomModelSpec s;
      s.arch = "gemma2";
      s.n_layers = 26;
      s.d_model = 2304;
      s.n_heads = 8;
      s.n_kv_heads = 4;
      s.d_head = 256;
      s.d_mlp = 9216;
      s.d_vocab = 256000;
      s.n_ctx = 8192;
      s.init_std = 0.02;
      s.dtype = "bf16";
      auto t0 = bench::BenchClock::now();
      Status st = write_random_model(s, dir, true);
      if (!st) {
        std::fprintf(stderr, "bench_family_memory: %s\n", st.error().message.c_str());
        return 1;
      }
      std::printf("wrote %s in %.1f s\n", dir.c_str(), bench::seconds_since(t0));
      std::printf("model written; run again for a clean peak-memory figure\n");
      return 0;
    }
  }
  LoadOptions lo;
  lo.dtype = dtype;
  auto t0 = bench::BenchClock::now();
  Result<std::unique_ptr<Model>> m = Model::load(dir, lo);
  if (!m) {
    std::fprintf(stderr, "bench_family_memory: %s\n", m.error().message.c_str());
    return 1;
  }
  const double load_s = bench::seconds_since(t0), after_load = bench::peak_rss_gib();
  const ModelConfig& c = (*m)->config();
  const double f32_gib = static_cast<double>((*m)->parameter_count()) * 4 / (1024.0 * 1024.0 * 1024.0);
  const double own_gib = bench::weights_gib(**m);
  std::vector<int32_t> ids;
  for (int64_t t = 0; t < T; ++t) ids.push_back(static_cast<int32_t>(2 + (t * 7919) % (c.d_vocab - 2)));
  at::Tensor tokens = (*m)->tokens_tensor(ids);
  at::NoGradGuard ng;
  t0 = bench::BenchClock::now();
  at::Tensor logits = (*m)->forward(tokens);
  const double fwd_s = bench::seconds_since(t0);
  const double peak = bench::peak_rss_gib();
  const double bound = f32_gib + 1.5;
  std::printf("%s: %lld parameters (f32 weights %.2f GiB, loaded %s %.2f GiB); load %.1f s, peak RSS after load %.2f GiB\n",
              c.model_type.c_str(), static_cast<long long>((*m)->parameter_count()), f32_gib, dtype.c_str(), own_gib,
              load_s, after_load);
  std::printf("forward %lld tokens at %d threads, %s: %.1f s (%.1f tokens/s, %.1f GFLOP/s); peak RSS %.2f GiB, bound %.2f GiB: %s\n",
              static_cast<long long>(T), at::get_num_threads(), dtype.c_str(), fwd_s, static_cast<double>(T) / fwd_s,
              bench::causal_forward_flops(c, T) / fwd_s / 1e9, peak, bound, peak <= bound ? "within" : "OVER");
  return peak <= bound && logits.isfinite().all().item<bool>() ? 0 : 1;
}
