// `mpirun -np 2 --oversubscribe mechscope batch` on loopback: each rank runs its slice into its own
// shard database, rank 0 merges them, and the merged rows equal one process's. Skipped with a
// message when OpenMPI's mpirun is not installed (scripts/install-deps.sh installs it).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "tests/support/batch_support.h"
#include "tests/support/test_support.h"

namespace ms {
namespace {

std::string find_mpirun() {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    std::string dir = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!dir.empty() && ::access((dir + "/mpirun").c_str(), X_OK) == 0) return dir + "/mpirun";
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

TEST(BatchMpi, TwoRanksMergeToTheSingleProcessRows) {
  std::string mpirun = find_mpirun();
  if (mpirun.empty()) GTEST_SKIP() << "mpirun not found (install openmpi-bin); MPI batch test skipped";
  std::string dir = test::temp_dir("batch-mpi");
  std::string job = test::write_test_job(dir);
  auto single = test::run_mechscope({"batch", job, "--db", dir + "/single.db"});
  ASSERT_EQ(single.exit_code, 0) << single.err;

  std::string cmd = mpirun + " -np 2 --oversubscribe" + (::geteuid() == 0 ? " --allow-run-as-root" : "") +
                    " --mca btl self,vader " + test::mechscope_binary() + " batch " + job + " --db " + dir +
                    "/mpi.db > " + dir + "/mpi.log 2>&1";
  int rc = std::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << cmd << "\n" << test::read_file(dir + "/mpi.log");
  EXPECT_TRUE(std::filesystem::exists(dir + "/mpi.shard-0-of-2.db"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/mpi.shard-1-of-2.db"));
  auto ref = test::stored_rows(dir + "/single.db");
  EXPECT_EQ(test::stored_rows(dir + "/mpi.shard-0-of-2.db").size() + test::stored_rows(dir + "/mpi.shard-1-of-2.db").size(), ref.size());
  int dups = 0;
  auto merged = test::stored_rows(dir + "/mpi.db", &dups);
  EXPECT_EQ(dups, 0);
  EXPECT_TRUE(merged == ref) << test::read_file(dir + "/mpi.log");
}

}  // namespace
}  // namespace ms
