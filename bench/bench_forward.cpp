// Forward-pass benchmark (issue: foundation): the machine's f32 GEMM peak, the forward pass's
// achieved FLOP/s on a GPT-2-small-shaped random model at T = 512 against that peak and against
// PyTorch eager (bench/peer_gpt2.py, the path Hugging Face transformers takes), hook overhead,
// and load time against one read of the weights file; then the long-context forward of the
// Llama-shaped model (bench_common.h) with fused and materialising attention side by side against
// its FLOP floors (whole forward, attention part) and its own GEMM floor. Ratios in one run;
// --profile adds a per-operation table of one forward per shape.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "bench/op_profile.h"
#include "core/base/malloc_reuse.h"
#include "bench_paths.h"  // generated: MECHSCOPE_SOURCE_DIR
#include "core/attention/fused_attention.h"
#include "core/model/model.h"
#include "core/zoo/zoo_random.h"
#include "hooks/activation_cache.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// --profile: one more forward per shape under the per-operation profiler (bench/op_profile.h).
bool g_profile = false;

using ms::bench::best_of;
using ms::bench::causal_attention_flops;
using ms::bench::causal_forward_flops;
using ms::bench::forward_flops;
using ms::bench::gemm_peak_gflops;
using ms::bench::seconds_since;

// Best times of several variants measured in turns (A B C A B C ...), so that a change in the
// machine's load hits them alike.
std::vector<double> best_interleaved(int reps, const std::vector<std::function<void()>>& fs, bool warm_up = true) {
  std::vector<double> best(fs.size(), 1e30);
  if (warm_up)
    for (const auto& f : fs) f();
  for (int i = 0; i < reps; ++i)
    for (size_t j = 0; j < fs.size(); ++j) {
      auto t0 = Clock::now();
      fs[j]();
      best[j] = std::min(best[j], seconds_since(t0));
    }
  return best;
}

// The forward's own GEMM floor: its weight products at their real shapes ([T, in] x [in, out],
// one layer's timed and counted n_layers times, plus the unembedding), timed alone.
double gemm_floor_seconds(const ms::Model& m, int64_t t, int reps) {
  const ms::ModelConfig& c = m.config();
  const ms::LayerWeights& lw = m.weights().layers[0];
  double layer = 0;
  for (const at::Tensor& w : {lw.w_qkv, lw.w_o, lw.w_in, lw.w_out}) {
    at::Tensor x = at::randn({t, w.size(1)});
    layer += best_of(reps, [&] { at::linear(x, w); });
  }
  at::Tensor x = at::randn({t, c.d_model});
  return layer * c.n_layers + best_of(reps, [&] { at::linear(x, m.weights().w_u); });
}

// Llama-shaped forward at each T and thread count: fused against materialising attention,
// interleaved, each against the FLOP floors at the GEMM peak and against the GEMM floor.
void long_context(const std::vector<int64_t>& seqs, const std::vector<int>& thread_counts, int reps) {
  std::unique_ptr<ms::Model> model = ms::bench::long_context_model("bench_forward");
  const ms::ModelConfig& c = model->config();
  c10::InferenceMode guard;
  std::printf("\nlong context: Llama-shaped random model (%lld layers, d_model %lld, %lld heads, %lld KV heads, "
              "vocab %lld), best of %d, fused and materialising attention interleaved; fused kernels: %s\n",
              static_cast<long long>(c.n_layers), static_cast<long long>(c.d_model),
              static_cast<long long>(c.n_heads), static_cast<long long>(c.n_kv_heads),
              static_cast<long long>(c.d_vocab), reps, ms::fused_attention_kernels());
  for (int threads : thread_counts) {
    at::set_num_threads(threads);
    const double peak = gemm_peak_gflops(3);
    std::printf("threads %d: f32 GEMM peak %.1f GFLOP/s\n", threads, peak);
    for (int64_t t : seqs) {
      ms::bench::print_machine("bench_forward");
      at::Tensor tokens = at::randint(0, c.d_vocab, {1, t}, at::kLong);
      ms::ForwardOptions fused, mat;
      fused.attention_kernel = ms::AttentionKernel::kFused;
      mat.attention_kernel = ms::AttentionKernel::kMaterialise;
      const int64_t calls = ms::fused_attention_calls();
      std::vector<double> s = best_interleaved(reps, {[&] { model->forward(tokens, fused); },
                                                      [&] { model->forward(tokens, mat); }}, t <= 1024);
      const bool took_fused = ms::fused_attention_calls() > calls;
      const double gemm_floor = gemm_floor_seconds(*model, t, t <= 1024 ? 2 : 1);
      const double all_floor = causal_forward_flops(c, t) / peak / 1e9;
      const double attn_floor = causal_attention_flops(c, t) / peak / 1e9;
      std::printf("  T = %lld: floors at the GEMM peak: forward %.2f s (%.0f GFLOP), attention part %.2f s "
                  "(%.0f GFLOP); GEMM floor (weight products timed alone) %.2f s\n",
                  static_cast<long long>(t), all_floor, causal_forward_flops(c, t) / 1e9, attn_floor,
                  causal_attention_flops(c, t) / 1e9, gemm_floor);
      const char* names[] = {took_fused ? "fused" : "fused (NOT TAKEN)", "materialising"};
      for (int i = 0; i < 2; ++i)
        std::printf("    %-14s %.2f s = %.2fx the forward floor (target <= 1.5x); attention beyond the GEMM "
                    "floor %.2f s = %.2fx its floor\n", names[i], s[i], s[i] / all_floor,
                    s[i] - gemm_floor, (s[i] - gemm_floor) / attn_floor);
      std::printf("    materialising / fused = %.2fx\n", s[1] / s[0]);
      if (g_profile) {
        ms::bench::OpProfile profile;
        model->forward(tokens, fused);
        profile.stop();
        profile.print(("Llama shape, fused, T = " + std::to_string(t) + ", " + std::to_string(threads) + " threads").c_str());
      }
      std::fflush(stdout);  // long runs: figures as they come
    }
  }
}

double peer_seconds(const std::string& script, int threads, int64_t seq, int reps) {
  std::string cmd = "/usr/bin/python3 " + script + " --threads " + std::to_string(threads) +
                    " --seq " + std::to_string(seq) + " --reps " + std::to_string(reps) + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[512] = {0};
  std::string out;
  while (fgets(buf, sizeof buf, p)) out += buf;
  if (pclose(p) != 0) return -1;
  size_t at = out.find("\"seconds\": ");
  return at == std::string::npos ? -1 : std::atof(out.c_str() + at + 11);
}

double read_file_seconds(const std::string& path) {
  std::vector<char> buf(size_t(16) << 20);
  auto t0 = Clock::now();
  std::ifstream in(path, std::ios::binary);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
  }
  return seconds_since(t0);
}

void gpt2_section(std::string model_dir, int64_t seq, int reps, const std::vector<int>& thread_counts,
                  const std::string& peer, int load_reps, bool load_only_section);

}  // namespace

int main(int argc, char** argv) {
  ms::keep_freed_memory_for_reuse();  // as mechscope does (core/base/malloc_reuse.h)
  ms::huge_pages_for_large_tensors();  // large tensors on transparent huge pages (core/base/malloc_reuse.h)
  int64_t seq = 512;
  int reps = 5;
  std::string model_dir, peer = std::string(MECHSCOPE_SOURCE_DIR) + "/bench/peer_gpt2.py";
  std::vector<int> thread_counts{1, 2};
  std::vector<int64_t> long_seqs{1024, 4096};
  int long_reps = 1;
  bool gpt2 = true, load_only = false;
  int load_reps = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seq" && i + 1 < argc) seq = std::atoll(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--model" && i + 1 < argc) model_dir = argv[++i];
    else if (a == "--threads" && i + 1 < argc) {
      thread_counts.clear();
      for (int64_t n : ms::bench::parse_list(argv[++i])) thread_counts.push_back(static_cast<int>(n));
    }
    else if (a == "--no-peer") peer.clear();
    else if (a == "--long" && i + 1 < argc) long_seqs = ms::bench::parse_list(argv[++i]);
    else if (a == "--long-reps" && i + 1 < argc) long_reps = std::atoi(argv[++i]);
    else if (a == "--no-gpt2") gpt2 = false;
    else if (a == "--load-only") load_only = true;
    else if (a == "--load-reps" && i + 1 < argc) load_reps = std::atoi(argv[++i]);
    else if (a == "--profile") g_profile = true;
    else {
      std::fprintf(stderr, "usage: bench_forward [--seq T] [--reps N] [--model DIR] [--threads N1,N2] [--no-peer] "
                           "[--long T1,T2 (\"\": skip)] [--long-reps N] [--no-gpt2] [--load-only] [--load-reps N] [--profile]\n");
      return 2;
    }
  }
  ms::bench::print_machine("bench_forward");
  if (gpt2) gpt2_section(model_dir, seq, reps, thread_counts, peer, load_reps, load_only);
  if (!long_seqs.empty() && !load_only) long_context(long_seqs, thread_counts, long_reps);
  return 0;
}

namespace {

void gpt2_section(std::string model_dir, int64_t seq, int reps, const std::vector<int>& thread_counts,
                  const std::string& peer, int load_reps, bool load_only_section) {
  if (model_dir.empty()) {
    model_dir = (fs::temp_directory_path() / "mechscope-bench-gpt2-small").string();
    if (!fs::exists(fs::path(model_dir) / "model.safetensors")) {
      ms::RandomModelSpec s;
      s.arch = "gpt2";
      s.n_layers = 12;
      s.d_model = 768;
      s.n_heads = 12;
      s.d_vocab = 50257;
      s.n_ctx = 1024;
      ms::Status st = ms::write_random_model(s, model_dir, true);
      if (!st) {
        std::fprintf(stderr, "bench_forward: %s\n", st.error().message.c_str());
        std::exit(1);
      }
    }
  }
  std::printf("mechscope forward benchmark: GPT-2-small-shaped random model, T = %lld, medians of %d\n",
              static_cast<long long>(seq), reps);

  // Load + first read of every weight against one plain read of the file, in the same page-cache
  // state: cold (the file dropped from the page cache before each) and warm, interleaved.
  std::string st_path = (fs::path(model_dir) / "model.safetensors").string();
  std::unique_ptr<ms::Model> kept;
  double load_only_s = 0;
  auto load_and_touch = [&] {
    auto t0 = Clock::now();
    ms::Result<std::unique_ptr<ms::Model>> loaded = ms::Model::load(model_dir);
    load_only_s = seconds_since(t0);
    if (!loaded) {
      std::fprintf(stderr, "bench_forward: %s\n", loaded.error().message.c_str());
      std::exit(1);
    }
    double touched = 0;  // the first read of every weight: forces every page in
    for (const auto& kv : (*loaded)->weights().named()) touched += kv.second.sum().item<double>();
    if (touched != touched) std::printf("(NaN in weights)\n");
    kept = std::move(*loaded);
  };
  auto read_file = [&] { read_file_seconds(st_path); };
  // Each variant is timed alone: the previous load's model is released (its file unmapped) and,
  // for the cold page cache, the file dropped before the clock starts, so neither teardown nor
  // setup counts against either side.
  auto timed = [&](bool cold_cache, const std::function<void()>& f) {
    kept.reset();
    if (cold_cache) ms::bench::drop_from_page_cache(st_path);
    auto t0 = Clock::now();
    f();
    return seconds_since(t0);
  };
  at::set_num_threads(thread_counts.back());  // the first read of the weights runs at the bench's thread count
  ms::bench::print_machine("bench_forward");
  std::vector<double> lc(2), lw(2);
  {
    std::vector<std::vector<double>> t(4);
    timed(false, load_and_touch);  // warm-up
    for (int r = 0; r < load_reps; ++r) {
      t[0].push_back(timed(true, read_file));
      t[1].push_back(timed(true, load_and_touch));
      t[2].push_back(timed(false, read_file));
      t[3].push_back(timed(false, load_and_touch));
    }
    lc = {ms::bench::median(t[0]), ms::bench::median(t[1])};
    lw = {ms::bench::median(t[2]), ms::bench::median(t[3])};
  }
  if (!kept) load_and_touch();
  // The reading itself (a sum per weight), on the loaded weights once their pages are in: what the
  // first read costs beyond the load.
  auto read_weights = [&] {
    double s = 0;
    for (const auto& kv : kept->weights().named()) s += kv.second.sum().item<double>();
    if (s != s) std::printf("(NaN in weights)\n");
  };
  std::vector<double> lr = ms::bench::median_interleaved(load_reps, {read_file, read_weights});
  std::printf("load: %.0f MB file; medians of %d, interleaved with one read of the file in the same state:\n"
              "  cold page cache: load + first read of every weight %.3f s; one read of the file %.3f s; "
              "ratio %.2fx (target <= 1.2x)\n"
              "  warm page cache: load + first read of every weight %.3f s (load alone %.3f s); one read of "
              "the file %.3f s; ratio %.2fx (target <= 1.2x)\n",
              fs::file_size(st_path) / 1e6, load_reps, lc[1], lc[0], lc[1] / lc[0], lw[1], load_only_s, lw[0],
              lw[1] / lw[0]);
  std::printf("  a later read of every weight (the same sums, pages in): %.3f s = %.2fx one read of the file "
              "(warm); load + first read is %.2fx this\n", lr[1], lr[1] / lr[0], lw[1] / lr[1]);
  std::fflush(stdout);
  if (load_only_section) return;
  ms::Model& model = *kept;

  c10::InferenceMode guard;
  at::Tensor tokens = at::randint(0, model.config().d_vocab, {1, seq}, at::kLong);
  const double flops = forward_flops(model.config(), seq);
  for (int threads : thread_counts) {
    at::set_num_threads(threads);
    double peak = gemm_peak_gflops(reps);
    // Hook overhead: every point cached, and hooks registered but matching no point.
    ms::HookRegistry all, filtered;
    ms::ActivationCache cache;
    all.add_forward("*", ms::cache_hook(cache));
    filtered.add_forward("blocks.99.*", ms::cache_hook(cache));
    ms::ForwardOptions fa, ff, fused, mat;
    fa.hooks = &all;
    ff.hooks = &filtered;
    fused.attention_kernel = ms::AttentionKernel::kFused;
    mat.attention_kernel = ms::AttentionKernel::kMaterialise;
    std::vector<double> t = ms::bench::median_interleaved(reps, {[&] { model.forward(tokens); },
                                                    [&] { cache.clear(); model.forward(tokens, fa); },
                                                    [&] { model.forward(tokens, ff); },
                                                    [&] { model.forward(tokens, fused); },
                                                    [&] { model.forward(tokens, mat); }});
    double ours = t[0], with_all = t[1], with_filtered = t[2];
    double ours_gflops = flops / ours / 1e9;
    std::printf("\nthreads %d: f32 GEMM peak %.1f GFLOP/s\n", threads, peak);
    ms::bench::print_machine("bench_forward");
    std::printf("  mechscope forward: %.3f s, %.1f GFLOP/s = %.1f%% of peak (target >= 80%%; FLOPs counted "
                "as the dense computation, although causal query blocks skip masked keys)\n", ours,
                ours_gflops, 100 * ours_gflops / peak);
    if (!peer.empty()) {
      double p = peer_seconds(peer, threads, seq, reps);
      if (p > 0)
        std::printf("  PyTorch eager peer: %.3f s, %.1f GFLOP/s = %.1f%% of peak; mechscope is %.2fx faster\n",
                    p, flops / p / 1e9, 100 * flops / p / 1e9 / peak, p / ours);
      else
        std::printf("  PyTorch eager peer: not run (/usr/bin/python3 with python3-torch missing?)\n");
    }
    std::printf("  attention kernels: fused %.3f s, materialising %.3f s (materialising / fused %.2fx)\n", t[3], t[4],
                t[4] / t[3]);
    // Hooks matching no point against none, paired: each round times the two back to back, in
    // alternating order, and the figure is the median of the rounds' ratios (separate medians of
    // five drift by about 3% between two identical forwards on a shared machine, more than the
    // 2% target).
    std::vector<double> paired;
    for (int r = 0; r < 3 * reps; ++r) {
      double plain = 0, with = 0;
      for (int k = 0; k < 2; ++k) {
        const bool hooked = (k == 1) == (r % 2 == 0);
        auto t0 = Clock::now();
        if (hooked) model.forward(tokens, ff);
        else model.forward(tokens);
        (hooked ? with : plain) = ms::bench::seconds_since(t0);
      }
      paired.push_back(with / plain);
    }
    std::printf("  hooks: every point cached %.3f s = %.2fx (target <= 1.3x); registered but filtered "
                "out %.3f s = %.3fx; the same in %d paired rounds (median of their ratios) %.3fx "
                "(target <= 1.02x)\n",
                with_all, with_all / ours, with_filtered, with_filtered / ours, 3 * reps,
                ms::bench::median(paired));
    if (g_profile) {
      ms::bench::OpProfile profile;
      model.forward(tokens);
      profile.stop();
      profile.print(("GPT-2 shape, T = " + std::to_string(seq) + ", " + std::to_string(threads) + " threads").c_str());
    }
  }
}

}  // namespace
