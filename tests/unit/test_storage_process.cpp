// Storage across processes: a writer killed with SIGKILL in the middle of a run leaves a sound
// database without partial results, and readers running while another process writes never
// fail and never see a half-written run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "storage/database.h"
#include "tests/support/test_support.h"
#include "tests/unit/test_storage_fixtures.h"

namespace ms {
namespace {

constexpr int kLayers = 32, kHeads = 32;

// A run with many rows: `metrics` metrics of 32 x 32 heads, no tensors (the child process
// must not use LibTorch after fork).
RunResults big_results(int metrics, double seed) {
  RunResults r;
  r.inputs.push_back(test::demo_input(0, "a prompt", 16));
  for (int m = 0; m < metrics; ++m)
    r.scores.push_back(test::demo_scores("metric_" + std::to_string(m), kLayers, kHeads, seed + m));
  return r;
}

// Runs f in a child process; the child never returns into the test runner.
template <class F>
pid_t spawn(F&& f) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int code = 1;
    try {
      code = f();
    } catch (...) {
      code = 2;
    }
    ::_exit(code);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Every run is either absent, 'done' with all its rows, or 'failed' with none.
void expect_no_partial_runs(Database& db, int metrics) {
  std::vector<RunSummary> runs = db.list_runs().value();
  for (const RunSummary& s : runs) {
    if (s.run.status == RunStatus::kDone) {
      EXPECT_EQ(s.n_scores, int64_t{metrics} * kLayers * kHeads) << "run " << s.run.id;
      EXPECT_EQ(s.n_inputs, 1) << "run " << s.run.id;
    } else {
      EXPECT_EQ(s.run.status, RunStatus::kFailed) << "run " << s.run.id;
      EXPECT_EQ(s.n_scores, 0) << "run " << s.run.id;
      EXPECT_EQ(s.n_inputs, 0) << "run " << s.run.id;
    }
  }
}

TEST(StorageCrash, KilledInsideFinishRun) {
  std::string path = test::temp_dir("crash") + "/db.db";
  {
    auto db = Database::open(path);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->store_run({"sinks"}, big_results(2, 0)).ok());  // a complete earlier run
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = spawn([&] {
    ::close(fds[0]);
    auto db = Database::open(path);
    if (!db) return 3;
    int64_t id = (*db)->begin_run({"sinks", 0, "{\"big\":true}"}).value();
    bool signalled = false;
    Status st = (*db)->finish_run(id, big_results(40, 1), [&](int64_t rows) {
      if (rows >= 20000 && !signalled) {  // well inside the transaction: tell the parent, wait
        signalled = true;
        char c = 'x';
        if (::write(fds[1], &c, 1) != 1) ::_exit(4);
        for (;;) ::pause();
      }
    });
    return st.ok() ? 0 : 5;
  });
  ::close(fds[1]);
  char c = 0;
  ASSERT_EQ(::read(fds[0], &c, 1), 1) << "the writer never reached the middle of its transaction";
  ::close(fds[0]);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  EXPECT_EQ(wait_exit(child), 128 + SIGKILL);

  auto db = Database::open(path);  // recovery marks the dead writer's run failed
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ((*db)->integrity_check().value(), "ok");
  std::vector<RunSummary> runs = (*db)->list_runs().value();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].run.status, RunStatus::kFailed);
  EXPECT_NE(runs[0].run.error.find("ended before it finished"), std::string::npos) << runs[0].run.error;
  EXPECT_EQ(runs[0].n_scores, 0);
  EXPECT_EQ(runs[1].run.status, RunStatus::kDone);
  EXPECT_EQ(runs[1].n_scores, 2 * kLayers * kHeads);
  expect_no_partial_runs(**db, 2);
}

TEST(StorageCrash, KilledInsideStoreRunLeavesNoRow) {
  std::string path = test::temp_dir("crash") + "/db.db";
  { ASSERT_TRUE(Database::open(path).ok()); }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = spawn([&] {
    ::close(fds[0]);
    auto db = Database::open(path);
    if (!db) return 3;
    Result<int64_t> r = (*db)->store_run({"sinks"}, big_results(40, 1), [&](int64_t rows) {
      if (rows >= 30000) {
        char c = 'x';
        if (::write(fds[1], &c, 1) != 1) ::_exit(4);
        for (;;) ::pause();
      }
    });
    return r.ok() ? 0 : 5;
  });
  ::close(fds[1]);
  char c = 0;
  ASSERT_EQ(::read(fds[0], &c, 1), 1);
  ::close(fds[0]);
  ::kill(child, SIGKILL);
  wait_exit(child);
  auto db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ((*db)->integrity_check().value(), "ok");
  EXPECT_TRUE((*db)->list_runs().value().empty());
}

// Kill a writer that stores run after run at random moments, several times over.
TEST(StorageCrash, KilledAtRandomMoments) {
  std::string path = test::temp_dir("crash") + "/db.db";
  { ASSERT_TRUE(Database::open(path).ok()); }
  std::mt19937 rng(7);
  for (int round = 0; round < 6; ++round) {
    pid_t child = spawn([&] {
      auto db = Database::open(path);
      if (!db) return 3;
      for (int i = 0;; ++i) {
        if (i % 2) {
          if (!(*db)->store_run({"sinks"}, big_results(8, i)).ok()) return 5;
        } else {
          int64_t id = (*db)->begin_run({"heads"}).value();
          if (!(*db)->finish_run(id, big_results(8, i)).ok()) return 6;
        }
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(80, 400)(rng)));
    ::kill(child, SIGKILL);
    EXPECT_EQ(wait_exit(child), 128 + SIGKILL) << "the writer stopped on its own (an error)";
  }
  auto db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ((*db)->integrity_check().value(), "ok");
  EXPECT_FALSE((*db)->list_runs().value().empty());
  expect_no_partial_runs(**db, 8);
}

// Two processes write runs while this one reads in a loop: no errors ("database is locked"),
// no run visible as done without all of its rows, none missing at the end.
TEST(StorageConcurrency, WritersAndReader) {
  std::string path = test::temp_dir("concurrent") + "/db.db";
  { ASSERT_TRUE(Database::open(path).ok()); }
  const int per_writer = 40, metrics = 3;
  auto writer = [&](int w) {
    return spawn([&, w] {
      auto db = Database::open(path);
      if (!db) return 3;
      for (int i = 0; i < per_writer; ++i) {
        RunSpec spec = test::keyed_spec("batch-item", "w" + std::to_string(w) + "-" + std::to_string(i));
        if (i % 2) {
          if (!(*db)->store_run(spec, big_results(metrics, i)).ok()) return 5;
        } else {
          Result<int64_t> id = (*db)->begin_run(spec);
          if (!id) return 6;
          (void)(*db)->set_progress(*id, 0.5);
          Status st = (*db)->finish_run(*id, big_results(metrics, i));
          if (!st) {
            std::fprintf(stderr, "writer %d: %s\n", w, st.error().message.c_str());
            return 7;
          }
        }
      }
      return 0;
    });
  };
  pid_t a = writer(0), b = writer(1);
  auto reader = Database::open(path);
  ASSERT_TRUE(reader.ok());
  int polls = 0, max_seen = 0;
  bool a_done = false, b_done = false;
  int a_code = -1, b_code = -1;
  while (!(a_done && b_done)) {
    Result<std::vector<RunSummary>> runs = (*reader)->list_runs();
    ASSERT_TRUE(runs.ok()) << runs.error().message;
    for (const RunSummary& s : *runs) {
      if (s.run.status == RunStatus::kDone) {
        ASSERT_EQ(s.n_scores, metrics * kLayers * kHeads) << "run " << s.run.id;
        Result<std::vector<HeadScores>> scores = (*reader)->get_head_scores(s.run.id);
        ASSERT_TRUE(scores.ok()) << scores.error().message;
        ASSERT_EQ(scores->size(), static_cast<size_t>(metrics));
      } else {
        ASSERT_EQ(s.run.status, RunStatus::kRunning) << "run " << s.run.id;
        ASSERT_EQ(s.n_scores, 0) << "run " << s.run.id << " shows rows before it is done";
      }
    }
    max_seen = std::max(max_seen, static_cast<int>(runs->size()));
    ++polls;
    int status = 0;
    if (!a_done && ::waitpid(a, &status, WNOHANG) == a) a_done = true, a_code = WEXITSTATUS(status);
    if (!b_done && ::waitpid(b, &status, WNOHANG) == b) b_done = true, b_code = WEXITSTATUS(status);
  }
  EXPECT_EQ(a_code, 0);
  EXPECT_EQ(b_code, 0);
  EXPECT_GT(polls, 3);
  std::vector<RunSummary> runs = (*reader)->list_runs().value();
  ASSERT_EQ(runs.size(), static_cast<size_t>(2 * per_writer));
  for (const RunSummary& s : runs) {
    EXPECT_EQ(s.run.status, RunStatus::kDone);
    EXPECT_EQ(s.n_scores, metrics * kLayers * kHeads);
  }
  for (int w = 0; w < 2; ++w)
    for (int i = 0; i < per_writer; ++i)
      EXPECT_TRUE((*reader)->find_done_run("batch-item", "w" + std::to_string(w) + "-" + std::to_string(i)).value())
          << w << "-" << i;
  EXPECT_EQ((*reader)->integrity_check().value(), "ok");
  std::printf("reader polled %d times while the writers worked (up to %d runs seen)\n", polls, max_seen);
}

}  // namespace
}  // namespace ms
