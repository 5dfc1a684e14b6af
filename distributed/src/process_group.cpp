// The world process group on OpenMPI, every collective with a deadline.
#include <chrono>
#include <cstdlib>
#include <thread>
#include <type_traits>
#include <utility>

#include "mpi_detail.hpp"

namespace zg::distributed {

namespace detail {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw DistributedError(std::string("distributed: ") + call + " failed: " + std::string(text, std::size_t(len)));
}

void wait(ProcessGroup& group, MPI_Request& request, const std::string& what) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto deadline = start + std::chrono::duration<double>(group.timeout_seconds());
  // Spin first (collectives here take micro- to milliseconds), then yield
  // the core so a waiting rank does not starve one sharing it, and after
  // 5 ms (another rank writes a checkpoint, or runs alone) poll every
  // 100 us instead of keeping a core busy.
  for (long spins = 0;; ++spins) {
    int done = 0;
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what.c_str());
    if (done) return;
    if (spins > 10000) {
      const auto now = clock::now();
      if (now > deadline)
        throw DistributedError("distributed: " + what + " on rank " + std::to_string(group.rank()) +
                               " got no answer from the other ranks within " +
                               std::to_string(int(group.timeout_seconds())) +
                               " s (ZEROGRAD_DISTRIBUTED_TIMEOUT): a rank stopped, hangs or runs a different program");
      if (now - start > std::chrono::milliseconds(5)) std::this_thread::sleep_for(std::chrono::microseconds(100));
      else std::this_thread::yield();
    }
  }
}

void poke(MPI_Request* requests, int count) {
  if (count == 0) return;
  int done = 0;
  MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE);
}

}  // namespace detail

namespace {

// Note [OpenMPI defaults]: two OpenMPI settings measured on the 2-core CI
// machine (a Firecracker VM, OpenMPI 4.1.4, 2 ranks, 433,890 floats, the
// size of SimpleConvNet's gradients; median of 60):
//   MPI_Iallreduce with OpenMPI's defaults           0.47-0.57 ms
//   + coll_libnbc_iallreduce_algorithm=1 (ring)      0.28-0.32 ms
//   + btl_vader_single_copy_mechanism=none           0.11-0.18 ms
// and at 4,000,000 floats 7.9 -> 2.7 -> 2.0-2.2 ms. libnbc, which serves
// every non-blocking collective, otherwise picks recursive doubling or
// binomial, and the ring is the bandwidth-optimal all-reduce for the large
// buckets data-parallel training sends. Cross-memory attach (CMA, the
// default single copy) was slower than copying through shared memory at
// both sizes here. Both are set before MPI_Init only when the user set
// neither the variable nor ZEROGRAD_MPI_DEFAULTS=0; mpirun's --mca and
// OMPI_MCA_* always win. They touch nothing but OpenMPI.
const std::pair<const char*, const char*> kOpenMpiDefaults[] = {
    {"OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1"},
    {"OMPI_MCA_btl_vader_single_copy_mechanism", "none"},
};

void set_openmpi_defaults() {
  if (const char* off = std::getenv("ZEROGRAD_MPI_DEFAULTS"); off && std::string(off) == "0") return;
  for (const auto& [name, value] : kOpenMpiDefaults) setenv(name, value, /*overwrite=*/0);
}

}  // namespace

std::vector<std::string> openmpi_settings() {
  std::vector<std::string> out;
  for (const auto& [name, value] : kOpenMpiDefaults) {
    const char* v = std::getenv(name);
    out.push_back(std::string(name) + "=" + (v ? v : "(OpenMPI's default)"));
  }
  return out;
}

bool launched_by_mpirun() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(name)) return true;
  return false;
}

ProcessGroup& ProcessGroup::world() {
  static std::unique_ptr<ProcessGroup> group(new ProcessGroup());
  return *group;
}

ProcessGroup::ProcessGroup() : impl_(std::make_unique<Impl>()) {
  if (!launched_by_mpirun())
    throw DistributedError(
        "distributed: this process was not started by mpirun (none of OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK is "
        "set); run it as: mpirun -np 2 <program> <options>");
  if (const char* t = std::getenv("ZEROGRAD_DISTRIBUTED_TIMEOUT")) {
    char* end = nullptr;
    const double v = std::strtod(t, &end);
    if (end == t || *end != '\0' || !(v > 0))
      throw ValueError(std::string("distributed: ZEROGRAD_DISTRIBUTED_TIMEOUT='") + t +
                       "' is not a positive number of seconds");
    timeout_ = v;
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    set_openmpi_defaults();
    int provided = 0;
    detail::check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  }
  // Our own communicator, whose errors come back as codes (then exceptions)
  // instead of aborting inside MPI.
  detail::check(MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(impl_->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(impl_->comm, &rank_);
  MPI_Comm_size(impl_->comm, &size_);
  MPI_Comm local = MPI_COMM_NULL;
  detail::check(MPI_Comm_split_type(impl_->comm, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local),
                "MPI_Comm_split_type");
  MPI_Comm_rank(local, &local_rank_);
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
}

ProcessGroup::~ProcessGroup() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (impl_->comm != MPI_COMM_NULL) MPI_Comm_free(&impl_->comm);
  MPI_Finalize();
}

void ProcessGroup::barrier() {
  MPI_Request r;
  detail::check(MPI_Ibarrier(impl_->comm, &r), "MPI_Ibarrier");
  detail::wait(*this, r, "barrier");
}

namespace {
template <class T>
MPI_Datatype mpi_type() {
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

int count_of(std::size_t n, const char* what) {
  if (n > std::size_t(1) << 30)
    throw ValueError(std::string("distributed: ") + what + " of " + std::to_string(n) +
                     " elements: split it (at most 2^30 per call)");
  return static_cast<int>(n);
}

template <class T>
void all_reduce_sum_impl(ProcessGroup& g, T* data, std::size_t n) {
  MPI_Request r;
  detail::check(MPI_Iallreduce(MPI_IN_PLACE, data, count_of(n, "all_reduce_sum"), mpi_type<T>(), MPI_SUM,
                               g.impl().comm, &r),
                "MPI_Iallreduce");
  detail::wait(g, r, "all_reduce_sum of " + std::to_string(n) + " values");
}

template <class T>
void broadcast_impl(ProcessGroup& g, T* data, std::size_t n, int root) {
  MPI_Request r;
  detail::check(MPI_Ibcast(data, count_of(n, "broadcast"), mpi_type<T>(), root, g.impl().comm, &r), "MPI_Ibcast");
  detail::wait(g, r, "broadcast of " + std::to_string(n) + " values");
}
}  // namespace

void ProcessGroup::all_reduce_sum(float* data, std::size_t n) { all_reduce_sum_impl(*this, data, n); }
void ProcessGroup::all_reduce_sum(double* data, std::size_t n) { all_reduce_sum_impl(*this, data, n); }
void ProcessGroup::broadcast(float* data, std::size_t n, int root) { broadcast_impl(*this, data, n, root); }
void ProcessGroup::broadcast(double* data, std::size_t n, int root) { broadcast_impl(*this, data, n, root); }

std::vector<std::uint64_t> ProcessGroup::all_gather(std::uint64_t value) {
  std::vector<std::uint64_t> out(static_cast<std::size_t>(size_));
  MPI_Request r;
  detail::check(MPI_Iallgather(&value, 1, MPI_UINT64_T, out.data(), 1, MPI_UINT64_T, impl_->comm, &r),
                "MPI_Iallgather");
  detail::wait(*this, r, "all_gather");
  return out;
}

std::vector<std::string> ProcessGroup::all_gather(const std::string& value) {
  const auto lengths = all_gather(std::uint64_t(value.size()));
  std::vector<int> counts(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
  std::size_t total = 0;
  for (int i = 0; i < size_; ++i) {
    offsets[std::size_t(i)] = count_of(total, "all_gather");
    counts[std::size_t(i)] = count_of(lengths[std::size_t(i)], "all_gather");
    total += lengths[std::size_t(i)];
  }
  std::string all(total, '\0');
  MPI_Request r;
  detail::check(MPI_Iallgatherv(value.data(), count_of(value.size(), "all_gather"), MPI_CHAR, all.data(), counts.data(),
                                offsets.data(), MPI_CHAR, impl_->comm, &r),
                "MPI_Iallgatherv");
  detail::wait(*this, r, "all_gather of strings");
  std::vector<std::string> out;
  for (int i = 0; i < size_; ++i)
    out.push_back(all.substr(std::size_t(offsets[std::size_t(i)]), lengths[std::size_t(i)]));
  return out;
}

void ProcessGroup::check_same(std::uint64_t value, const std::string& what) {
  const auto values = all_gather(value);
  for (int i = 1; i < size_; ++i)
    if (values[std::size_t(i)] != values[0])
      throw ValueError("distributed: " + what + ": " + std::to_string(values[0]) + " on rank 0 but " +
                       std::to_string(values[std::size_t(i)]) + " on rank " + std::to_string(i));
}

void ProcessGroup::abort(int code) {
  // MPI_Abort asks mpirun to end every rank. Cut off from mpirun's host (a
  // network partition), it can wait for an answer forever; this process ends
  // anyway, and its daemon, which loses mpirun too, ends the rest here.
  std::thread([code] {
    std::this_thread::sleep_for(std::chrono::seconds(5));
    std::_Exit(code);
  }).detach();
  MPI_Abort(impl_->comm != MPI_COMM_NULL ? impl_->comm : MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace zg::distributed
