// MPI rank detection and the barrier before rank 0 merges (see mpi_world.h).
#include "app/batch/mpi_world.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/base/atomic_file.h"

#ifdef MECHSCOPE_WITH_MPI
#include <mpi.h>
#endif

namespace ms::app {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

#ifndef MECHSCOPE_WITH_MPI
int env_int(const char* a, const char* b, int def) {
  const char* v = env(a) ? env(a) : env(b);
  if (!v) return def;
  try {
    return std::stoi(v);
  } catch (const std::exception&) {
    return def;
  }
}
#endif

}  // namespace

MpiWorld mpi_world_init() {
  MpiWorld w;
  const bool launched = env("OMPI_COMM_WORLD_SIZE") || env("PMI_SIZE") || env("PMIX_RANK");
  if (!launched) return w;
#ifdef MECHSCOPE_WITH_MPI
  int init = 0;
  MPI_Initialized(&init);
  if (!init) MPI_Init(nullptr, nullptr);
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size);
  w.linked = true;
#else
  w.rank = env_int("OMPI_COMM_WORLD_RANK", "PMI_RANK", 0);
  w.size = env_int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", 1);
#endif
  w.active = w.size > 1;
  for (const char* k : {"PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid", "PMI_JOBID", "SLURM_STEP_ID"})
    if (env(k)) w.launch_id += std::string(k) + "=" + env(k) + ";";
  if (w.launch_id.empty()) w.launch_id = "ppid=" + std::to_string(static_cast<long long>(::getppid()));
  return w;
}

void mpi_barrier(const MpiWorld& w, const std::string& marker, const std::vector<std::string>& all_markers) {
  if (!w.active) return;
#ifdef MECHSCOPE_WITH_MPI
  if (w.linked) {
    (void)marker;
    (void)all_markers;
    MPI_Barrier(MPI_COMM_WORLD);
    return;
  }
#endif
  write_file_atomic(marker, w.launch_id);
  if (w.rank != 0) return;
  for (const std::string& m : all_markers) {
    for (;;) {
      std::ifstream in(m);
      std::stringstream ss;
      ss << in.rdbuf();
      if (in && ss.str() == w.launch_id) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

void mpi_world_finalize(const MpiWorld& w) {
#ifdef MECHSCOPE_WITH_MPI
  if (w.linked) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
  }
#else
  (void)w;
#endif
}

}  // namespace ms::app
