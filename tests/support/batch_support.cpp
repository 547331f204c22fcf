// Batch test helpers (see batch_support.h).
#include "tests/support/batch_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "storage/database.h"
#include "tests/support/test_support.h"

namespace ms::test {

std::string write_test_job(const std::string& dir, const std::string& extra) {
  for (const char* name : {"sink", "copy"}) {
    if (std::filesystem::exists(dir + "/" + name + "/config.json")) continue;
    ProcessResult z = run_mechscope({"zoo", "construct", name, "--out", dir + "/" + name});
    if (z.exit_code != 0) throw std::runtime_error("zoo construct " + std::string(name) + ": " + z.err);
  }
  // 24 token-id prompts of 200 tokens (<bos> then ordinary ids): items long enough to be killed in.
  std::string prompts;
  for (int i = 0; i < 24; ++i) {
    prompts += "{\"tokens\": [0";
    for (int t = 1; t < 200; ++t) prompts += ", " + std::to_string(2 + (i * 37 + t * 11) % 62);
    prompts += "]}\n";
  }
  write_file(dir + "/prompts.jsonl", prompts);
  std::string job = dir + "/job.toml";
  write_file(job, "# a test study over the constructed models\n"
                  "threads = 1\n"
                  "[[model]]\nname = \"sink\"\npath = \"sink\"\n"
                  "[[model]]\nname = \"copy\"\npath = \"copy\"\n"
                  "[[prompts]]\nname = \"check\"\npath = \"prompts.jsonl\"\n"
                  "[[analysis]]\nkind = \"sinks\"\nepsilon = [0.3, 0.5]\nmax_tokens = [48, 0]\nhidden_threshold = \"rel:5\"\n"
                  "[[analysis]]\nkind = \"retrieval\"\nlengths = [[40], [96]]\ndepths = 3\nmask_top = 1\n" + extra);
  return job;
}

std::map<std::string, std::string> stored_rows(const std::string& path, int* duplicates) {
  std::map<std::string, std::string> rows;
  OpenOptions oo;
  oo.create = false;
  Result<std::unique_ptr<Database>> db = Database::open(path, oo);
  if (!db) {
    ADD_FAILURE() << path << ": " << db.error().message;
    return rows;
  }
  Result<std::vector<RunSummary>> runs = (*db)->list_runs();
  if (!runs) {
    ADD_FAILURE() << runs.error().message;
    return rows;
  }
  // A run linked to an item's run (a masked re-run, a calibration) is part of the item's row.
  std::map<int64_t, int64_t> linked_to;  // run -> the run it links to
  for (const RunSummary& s : *runs) {
    auto links = (*db)->get_links(s.run.id);
    if (s.run.spec.resume_key.empty() && links)
      for (const RunLink& l : *links)
        if (l.run_id == s.run.id) linked_to[s.run.id] = l.source_run_id;
  }
  std::map<int64_t, std::string> text;  // run id -> its row text
  std::map<int64_t, std::string> key_of;
  for (const RunSummary& s : *runs) {
    if (s.run.status != RunStatus::kDone) continue;
    std::string key = s.run.spec.resume_key.empty() ? "run" + std::to_string(s.run.id) : s.run.spec.resume_key;
    std::string v = s.run.spec.kind + "\n" + s.run.spec.params_json + "\n" + s.run.spec.label + "\n";
    Result<ModelInfo> m = (*db)->get_model(s.run.spec.model_id);
    if (m) v += m->content_hash + "\n";
    auto inputs = (*db)->get_inputs(s.run.id);
    auto scores = (*db)->get_head_scores(s.run.id);
    auto tensors = (*db)->list_tensors(s.run.id);
    if (!inputs || !scores || !tensors) {
      ADD_FAILURE() << path << ": cannot read run " << s.run.id;
      continue;
    }
    for (const auto& in : *inputs) {
      v += "input " + std::to_string(in.index) + " " + in.text + " [";
      for (int32_t t : in.token_ids) v += std::to_string(t) + ",";
      v += "]\n";
    }
    for (const auto& hs : *scores) {
      v += "score " + hs.metric + ":";
      for (double x : hs.values) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), " %.17g", x);
        v += buf;
      }
      v += "\n";
    }
    for (const auto& ti : *tensors) {
      auto got = (*db)->get_tensor(s.run.id, ti.name);
      if (!got) {
        ADD_FAILURE() << path << ": " << got.error().message;
        continue;
      }
      at::Tensor t = got->contiguous();
      v += "tensor " + ti.name + " " + ti.dtype + " " + ti.meta_json + " [";
      for (int64_t d : ti.shape) v += std::to_string(d) + ",";
      v += "] " + std::string(static_cast<const char*>(t.data_ptr()), t.nbytes()) + "\n";
    }
    text[s.run.id] = v;
    key_of[s.run.id] = key;
  }
  for (auto& [id, v] : text) {
    if (linked_to.count(id) && text.count(linked_to[id])) continue;
    std::string row = v;
    for (const auto& [linked, source] : linked_to)  // in id order: the order they were stored in
      if (source == id && text.count(linked)) row += "linked:\n" + text[linked];
    if (rows.count(key_of[id])) {
      ADD_FAILURE() << path << ": resume key " << key_of[id] << " is stored twice";
      if (duplicates) ++*duplicates;
    }
    rows[key_of[id]] = row;
  }
  return rows;
}

namespace {

pid_t spawn(const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<std::string> argv_s = {mechscope_binary()};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

bool run_and_kill(const std::vector<std::string>& args, int delay_ms) {
  pid_t pid = spawn(args);
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  int status = 0;
  bool running = ::waitpid(pid, &status, WNOHANG) == 0;
  if (running) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  return running;
}

size_t count_done_runs(const std::string& path) {
  if (!std::filesystem::exists(path)) return 0;
  OpenOptions oo;
  oo.create = false;
  oo.recover = false;
  Result<std::unique_ptr<Database>> db = Database::open(path, oo);
  if (!db) {  // not created completely yet, or a real problem: say which
    std::printf("  (count_done_runs: %s cannot be opened: %s)\n", path.c_str(), db.error().message.c_str());
    return 0;
  }
  RunFilter f;
  f.status = RunStatus::kDone;
  Result<std::vector<RunSummary>> runs = (*db)->list_runs(f);
  if (!runs) {
    std::printf("  (count_done_runs: cannot list the runs of %s: %s)\n", path.c_str(), runs.error().message.c_str());
    return 0;
  }
  // Batch items: the runs with a resume key (not the runs linked to them).
  return static_cast<size_t>(std::count_if(runs->begin(), runs->end(),
                                           [](const RunSummary& s) { return !s.run.spec.resume_key.empty(); }));
}

bool run_and_kill_after_rows(const std::vector<std::string>& args, const std::string& db, size_t min_rows,
                             int extra_ms) {
  pid_t pid = spawn(args);
  int status = 0;
  for (;;) {
    if (::waitpid(pid, &status, WNOHANG) != 0) {  // finished before reaching the point
      std::printf("  (the run ended before %zu rows: %s %d, %zu rows stored)\n", min_rows,
                  WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                  count_done_runs(db));
      return false;
    }
    if (count_done_runs(db) >= min_rows) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(extra_ms));
  bool running = ::waitpid(pid, &status, WNOHANG) == 0;
  if (running) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  return running;
}

int run_and_signal_after_rows(const std::vector<std::string>& args, const std::string& db, size_t min_rows, int sig) {
  pid_t pid = spawn(args);
  int status = 0;
  for (;;) {
    if (::waitpid(pid, &status, WNOHANG) != 0) return -1;
    if (count_done_runs(db) >= min_rows) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, sig);
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

double timed_run(const std::vector<std::string>& args, int* rc) {
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = spawn(args);
  int status = 0;
  ::waitpid(pid, &status, 0);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace ms::test
