#pragma once
/// @file
/// The processes mpirun started, on OpenMPI: rank, world size, local rank,
/// and the few collectives data-parallel training needs. mpi.h stays out of
/// this header: a program using zerograd::distributed needs no MPI flags.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "zerograd/error.hpp"

namespace zg::distributed {

/// A collective that failed or did not finish: an MPI error, or no answer
/// from another rank within timeout_seconds() (a rank that hangs or died).
class DistributedError : public Error {
 public:
  using Error::Error;
};

/// Whether mpirun (or another PMI/PMIx launcher) started this process: it
/// sets OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK in the environment.
bool launched_by_mpirun();

/// The OpenMPI variables zerograd sets before MPI_Init unless the user did
/// (Note [OpenMPI defaults] in process_group.cpp), as "NAME=value" with the
/// value in effect: a faster all-reduce for gradient buckets. Opt out with
/// ZEROGRAD_MPI_DEFAULTS=0.
std::vector<std::string> openmpi_settings();

// Note [Never a hang]: every collective here is issued non-blocking and
// waited for with a deadline (ZEROGRAD_DISTRIBUTED_TIMEOUT seconds, default
// 300), so a rank that stops answering turns into a DistributedError on the
// others instead of a hang. A rank that dies is reported by mpirun, which
// ends the whole job; a rank that throws should call abort() so the others
// end at once instead of waiting out the deadline.
/// The processes of the job and their collectives, on MPI's world
/// communicator; every collective waits with a deadline (Note [Never a
/// hang]) and throws DistributedError when it passes.
class ProcessGroup {
 public:
  /// The world group: initialises MPI on the first call (MPI_Finalize runs at
  /// exit). Throws DistributedError when the process was not started by
  /// mpirun, naming the command to use.
  static ProcessGroup& world();

  int rank() const { return rank_; }  ///< this process's rank, 0 to size() - 1
  int size() const { return size_; }  ///< the number of processes
  /// Rank among the processes on this machine, and their count.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }  ///< processes on this machine
  bool is_main() const { return rank_ == 0; }  ///< rank 0, the one that prints and saves
  double timeout_seconds() const { return timeout_; }  ///< a collective's deadline (ZEROGRAD_DISTRIBUTED_TIMEOUT)

  void barrier();  ///< returns once every rank has reached it
  /// In place: the sum over all ranks.
  void all_reduce_sum(float* data, std::size_t n);
  void all_reduce_sum(double* data, std::size_t n);  ///< the same for double
  /// In place: root's values on every rank.
  void broadcast(float* data, std::size_t n, int root = 0);
  void broadcast(double* data, std::size_t n, int root = 0);  ///< the same for double
  /// Every rank's value, by rank.
  std::vector<std::uint64_t> all_gather(std::uint64_t value);
  std::vector<std::string> all_gather(const std::string& value);  ///< the same for strings
  /// Throws ValueError on every rank unless all ranks passed the same value:
  /// `"<what>: 60000 on rank 0 but 59999 on rank 1"`.
  void check_same(std::uint64_t value, const std::string& what);

  /// Ends every process of the job (MPI_Abort): call it after printing why.
  [[noreturn]] void abort(int code);

  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;
  ~ProcessGroup();

  struct Impl;  // the communicator (process_group.cpp, mpi_detail.hpp)
  Impl& impl() const { return *impl_; }

 private:
  ProcessGroup();
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  double timeout_ = 300;
};

}  // namespace zg::distributed
