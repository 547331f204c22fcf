// This process's place in an MPI job (`mpirun -np N mechscope batch ...`): rank and size, and a
// barrier before rank 0 merges the shards. Built with MECHSCOPE_MPI it uses MPI itself; without,
// it reads the launcher's environment (OpenMPI's OMPI_COMM_WORLD_*, PMI_*) and the barrier is a
// marker file per rank that rank 0 waits for, so a plain build works under mpirun too.
#pragma once

#include <string>
#include <vector>

namespace ms::app {

struct MpiWorld {
  int rank = 0, size = 1;
  bool active = false;      // started by an MPI launcher with more than one rank
  bool linked = false;      // MPI itself is in use (MECHSCOPE_MPI build)
  std::string launch_id;    // the same for every rank of one launch (marker files)
};

// Detects (and with MECHSCOPE_MPI initialises) MPI; never initialises MPI outside a launcher.
MpiWorld mpi_world_init();
// Waits until every rank got here. Without MPI: writes marker (holding launch_id); rank 0 then
// waits until every file in all_markers holds launch_id.
void mpi_barrier(const MpiWorld& w, const std::string& marker, const std::vector<std::string>& all_markers);
void mpi_world_finalize(const MpiWorld& w);

}  // namespace ms::app
