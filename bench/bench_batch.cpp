// bench_batch: what sharding costs. One CPU-bound batch job (sinks over 256-token prompts on a
// random GPT-2, 16 items) run by one single-threaded process, then by 2 shards of one thread each
// side by side, then merged. Prints both wall times and their ratio (ideal 0.5 on 2 cores; the
// target is at most 0.6). Measured in one run; other load on the machine disturbs both alike.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_common.h"
#include "bench_binary.h"
#include "core/zoo/zoo_random.h"

namespace {

namespace fs = std::filesystem;

pid_t spawn(const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<std::string> a = {MECHSCOPE_BINARY};
    a.insert(a.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

struct Timing {
  double wall = 0, cpu = 0;  // wall time until the last process ends; CPU time of all of them
  double cpu_max = 0;        // CPU time of the busiest process
};

// How many cores this process tree really gets: two busy children for 1 s of wall time each, side
// by side; returns their CPU seconds per wall second (2.0 on two free cores; less under a quota).
double parallel_capacity() {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<pid_t> pids;
  for (int i = 0; i < 2; ++i) {
    pid_t p = ::fork();
    if (p == 0) {
      volatile double x = 0;
      while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1)) x = x + 1;
      ::_exit(0);
    }
    pids.push_back(p);
  }
  double cpu = 0;
  for (pid_t p : pids) {
    int st = 0;
    struct rusage ru {};
    ::wait4(p, &st, 0, &ru);
    cpu += static_cast<double>(ru.ru_utime.tv_sec) + 1e-6 * static_cast<double>(ru.ru_utime.tv_usec);
  }
  return cpu / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs the processes side by side.
Timing run_all(const std::vector<std::vector<std::string>>& runs) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<pid_t> pids;
  for (const auto& r : runs) pids.push_back(spawn(r));
  Timing t;
  for (pid_t p : pids) {
    int st = 0;
    struct rusage ru {};
    ::wait4(p, &st, 0, &ru);
    double c = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    t.cpu += c;
    t.cpu_max = std::max(t.cpu_max, c);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      std::fprintf(stderr, "bench_batch: a mechscope process failed\n");
      std::exit(1);
    }
  }
  t.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return t;
}

}  // namespace

int main() {
  ms::bench::print_machine("bench_batch");
  fs::path dir = fs::temp_directory_path() / ("mechscope-bench-batch-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ms::RandomModelSpec s;
  s.arch = "gpt2";
  s.n_layers = 4;
  s.d_model = 256;
  s.n_heads = 8;
  s.d_vocab = 512;
  s.n_ctx = 512;
  ms::Status st = ms::write_random_model(s, (dir / "model").string(), true);
  if (!st) {
    std::fprintf(stderr, "bench_batch: %s\n", st.error().message.c_str());
    return 1;
  }
  {
    std::ofstream p(dir / "prompts.jsonl");
    for (int i = 0; i < 16; ++i) {
      p << "{\"tokens\": [";
      for (int t = 0; t < 256; ++t) p << (t ? ", " : "") << (i * 131 + t * 17) % 512;
      p << "]}\n";
    }
  }
  {
    std::ofstream j(dir / "job.toml");
    j << "threads = 1\n[[model]]\nname = \"m\"\npath = \"model\"\n[[prompts]]\nname = \"p\"\npath = \"prompts.jsonl\"\n"
         "[[analysis]]\nkind = \"sinks\"\nepsilon = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]\n"
         "max_tokens = [0, 255]\n";
  }
  const std::string job = (dir / "job.toml").string();
  std::printf("bench_batch: sinks, 16 items x 16 prompts x 256 tokens, random GPT-2 (4 layers, d_model 256)\n");
  Timing one = run_all({{"batch", job, "--db", (dir / "one.db").string()}});
  Timing two = run_all({{"batch", job, "--db", (dir / "two.db").string(), "--shard", "0/2"},
                        {"batch", job, "--db", (dir / "two.db").string(), "--shard", "1/2"}});
  Timing merge = run_all({{"merge", "--out", (dir / "merged.db").string(), (dir / "two.shard-0-of-2.db").string(),
                           (dir / "two.shard-1-of-2.db").string()}});
  double cores = parallel_capacity();
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  std::printf("  1 process x 1 thread : wall %.2f s, CPU %.2f s\n", one.wall, one.cpu);
  std::printf("  2 shards  x 1 thread : wall %.2f s, CPU %.2f s (+ merge: wall %.2f s)\n", two.wall, two.cpu, merge.wall);
  std::printf("  wall ratio 2 shards / 1 process: %.2f (ideal 0.50, target <= 0.60; %u cores, load average %.1f)\n",
              two.wall / one.wall, std::thread::hardware_concurrency(), load[0]);
  std::printf("  CPU ratio  2 shards / 1 process: %.2f (1.00: sharding adds no work; each shard loads the model)\n",
              two.cpu / one.cpu);
  std::printf("  slowest shard's CPU / 1 process's CPU: %.2f (the wall ratio on two free cores: each process is\n"
              "    single-threaded and CPU-bound, so its wall time is its CPU time when it has a core)\n",
              two.cpu_max / one.cpu);
  std::printf("  cores available to these processes right now: %.2f (two busy loops side by side)\n", cores);
  if (cores < 1.8)
    std::printf("  note: fewer than two free cores (busy machine or CPU quota); the wall ratio is disturbed\n");
  fs::remove_all(dir);
  return 0;
}
