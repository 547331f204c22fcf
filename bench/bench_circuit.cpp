// Edge attribution patching at GPT-2-small shape (12 layers, d_model 768, 12 heads, vocab 50257,
// random weights) on 32 prompt pairs of 16 tokens: EAP over every edge against one forward pass
// of the same batch, and against exact edge patching (a random sample of edges timed and
// extrapolated to all edges). Ratios come from one run; other load on the machine disturbs them.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.h"
#include "core/base/malloc_reuse.h"
#include "core/analysis/circuits/circuit_discovery.h"
#include "core/zoo/zoo_random.h"

using namespace ms;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  ms::keep_freed_memory_for_reuse();  // as mechscope does (core/base/malloc_reuse.h)
  ms::huge_pages_for_large_tensors();  // large tensors on transparent huge pages (core/base/malloc_reuse.h)
  // bench_circuit [EDGES_TO_TIME [THREADS [PROFILE_TRACE [REPS]]]]: EDGES_TO_TIME 0 skips exact
  // patching; PROFILE_TRACE ("" for none): one more EAP run under LibTorch's profiler, written as a
  // Chrome trace (JSON); REPS: turns of forward / last-logits forward / EAP, interleaved (5).
  int sample = argc > 1 ? std::atoi(argv[1]) : 24;
  int threads = argc > 2 ? std::atoi(argv[2]) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::string trace = argc > 3 ? argv[3] : "";
  const int reps = argc > 4 ? std::atoi(argv[4]) : 5;
  at::set_num_threads(std::max(1, threads));
  ms::bench::print_machine("bench_circuit");
  ModelConfig c;
  c.model_type = "gpt2";
  c.n_layers = 12;
  c.d_model = 768;
  c.n_heads = c.n_kv_heads = 12;
  c.d_head = 64;
  c.d_mlp = 3072;
  c.d_vocab = 50257;
  c.n_ctx = 1024;
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  c.tie_embeddings = true;
  Result<std::unique_ptr<Model>> mr = Model::from_weights(c, random_weights(c, 1, 0.02));
  if (!mr) {
    std::fprintf(stderr, "bench_circuit: %s\n", mr.error().message.c_str());
    return 1;
  }
  const Model& m = **mr;
  TaskOptions to;
  to.name = "induction";
  to.n = 32;
  to.half_len = 8;
  to.bos_id = 50256;
  TaskPairs task = std::move(make_task(to, nullptr, c.d_vocab).value());
  CircuitGraph g(c);
  std::printf("bench_circuit: GPT-2-small-shaped random model, %lld pairs x %lld tokens, %lld edges, %d threads\n",
              static_cast<long long>(task.n()), static_cast<long long>(task.seq_len()),
              static_cast<long long>(g.n_edges()), at::get_num_threads());
  at::NoGradGuard no_grad;
  ForwardOptions last;
  last.last_logits_only = true;
  // EAP as a user runs it: the corrupted run's node outputs, then one forward + one backward on
  // the clean run with the products for every edge. Interleaved with the forwards (medians).
  EdgeScores eap;
  auto run_eap = [&] {
    TaskRuns runs;
    runs.corrupted_out = collect_source_outputs(m, g, task.corrupted);
    eap = edge_attribution(m, g, task, runs);
  };
  std::vector<double> t = ms::bench::median_interleaved(
      reps, {[&] { m.forward(task.clean); }, [&] { m.forward(task.clean, last); }, run_eap});
  const double t_fwd = t[0], t_fwd_last = t[1], t_eap = t[2];
  if (!trace.empty()) {
    torch::autograd::profiler::RecordProfile profile(trace);
    run_eap();
  }
  std::printf("one forward (all logits)       %8.3f s\n", t_fwd);
  std::printf("one forward (last logits)      %8.3f s\n", t_fwd_last);
  std::printf("EAP, all %lld edges          %8.3f s  = %.2fx the full forward, %.2fx the last-logits forward (target <= 4x)\n",
              static_cast<long long>(g.n_edges()), t_eap, t_eap / t_fwd, t_eap / t_fwd_last);
  if (sample <= 0) return 0;
  // Exact edge patching: a random sample of edges, each one patched forward.
  TaskRuns runs = run_task(m, g, task);
  std::vector<std::pair<int, int>> edges = g.edges();
  std::mt19937_64 rng(7);
  std::shuffle(edges.begin(), edges.end(), rng);
  edges.resize(static_cast<size_t>(std::min<int64_t>(sample, static_cast<int64_t>(edges.size()))));
  auto t0 = std::chrono::steady_clock::now();
  EdgeScores ex = exact_edge_patching(m, g, task, runs, edges);
  double per_edge = seconds_since(t0) / static_cast<double>(edges.size());
  double t_exact_all = per_edge * static_cast<double>(g.n_edges());
  std::printf("exact edge patching            %8.3f s per edge (%zu edges timed) -> %.0f s for all %lld edges (extrapolated)\n",
              per_edge, edges.size(), t_exact_all, static_cast<long long>(g.n_edges()));
  std::printf("EAP speed-up over exact        %8.0fx (target >= 100x)\n", t_exact_all / t_eap);
  std::vector<double> a, b;
  for (auto [t, s] : edges) a.push_back(eap.scores[t][s].item<double>()), b.push_back(ex.scores[t][s].item<double>());
  std::printf("EAP vs exact on the timed edges: Spearman %.3f\n", spearman(a, b));
  return 0;
}
