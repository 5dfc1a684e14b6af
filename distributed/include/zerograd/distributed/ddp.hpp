#pragma once
/// @file
/// Data-parallel training: every rank runs the same model on its share of
/// the global batch, and gradients are averaged across ranks before the
/// optimizer's step, so all ranks take the same step as one process would
/// on the whole batch.
#include <cstddef>
#include <memory>
#include <vector>

#include "zerograd/distributed/process_group.hpp"
#include "zerograd/nn/module.hpp"

namespace zg::distributed {

/// How the ranks' gradients are averaged (Note [Two ways to average]).
enum class GradientReduction {
  automatic,      ///< shared_memory where every rank runs on this machine and the window fits, else all_reduce
  shared_memory,  ///< through an MPI shared-memory window: every rank on one machine, room in /dev/shm
  all_reduce,     ///< MPI_Iallreduce of buckets: any ranks, on any machines
};
const char* to_string(GradientReduction r);  ///< "automatic", "shared_memory" or "all_reduce"

/// How DistributedDataParallel averages gradients.
struct DdpOptions {
  /// Under all_reduce, gradients are averaged in buckets of about this many
  /// bytes (a bucket holds at least one parameter), each all-reduced as soon
  /// as all of its gradients are final.
  std::size_t bucket_bytes = std::size_t{25} << 20;
  GradientReduction reduction = GradientReduction::automatic;  ///< how (Note [Two ways to average])
};

// Note [Gradient buckets]: parameters are put in buckets in reverse
// registration order, the order backward finishes them in for a
// feed-forward model. Each parameter's post-accumulate-grad hook reports
// it ready during backward, so the all-reduce of the first buckets overlaps
// the rest of backward. A bucket's all-reduce (MPI_Iallreduce, a sum, then
// divided by the world size) starts once each of its parameters was
// reported ready, and only after every earlier bucket started, so every
// rank issues the collectives in one order whatever order its hooks fire
// in. finish_gradient_sync() reports the parameters not yet reported,
// starts what is left, waits for everything in flight and writes each mean
// back as the parameter's .grad.
// A parameter with no gradient on a rank in this iteration (unused by its
// forward) counts as zeros there: after the sync every parameter has a
// .grad on every rank, the sum of the others' gradients over the world size.
//
// Note [Two ways to average]: on one machine the ranks can read each
// other's memory, and averaging through it moves each gradient once.
// Under shared_memory each rank owns a segment of an MPI shared-memory
// window (MPI_Win_allocate_shared) with room for all its gradients, twice.
// A parameter's hook copies its gradient into this iteration's half of the
// rank's segment, so the copy overlaps backward as a bucket's all-reduce
// would. finish_gradient_sync() waits at a barrier (Note [Never a hang])
// for every rank to have copied, and each rank then sums all the segments
// in rank order straight into the new .grad arrays: the same bits on every
// rank, and the same as all_reduce with 2 ranks. The next iteration writes
// the other half, so no rank can overwrite a gradient another rank is still
// reading without a barrier between them. An MPI_Iallreduce of a bucket
// instead copies it into OpenMPI's shared-memory queues and out again in
// fragments, and moves on only inside MPI calls. Measured on the 2-core CI
// machine (bench/ddp_scaling, SimpleConvNet, 1.7 MB of gradients, the two
// alternating in each run; six runs): the sync added 0.32-0.46 ms per step
// through the window and 0.45-0.67 ms through all-reduce buckets. The sync
// alone of 8.6 M floats: 8.3-8.9 ms against 10.5-10.7.
// The window (a file of 2 x 4 bytes x parameters x ranks on /dev/shm, or
// in OpenMPI's osc_sm_backing_directory) is used only where it takes at
// most half of the free space there (a container may allow 64 MB);
// automatic picks it when every rank is on this machine and it fits, and
// shared_memory is a ValueError otherwise.
/// PyTorch's DistributedDataParallel: wraps a module so that after backward
/// and finish_gradient_sync() every parameter's .grad is the mean of the
/// ranks' gradients (Note [Gradient buckets], Note [Two ways to average]).
/// Every rank starts from rank 0's values, so all ranks take the same steps.
class DistributedDataParallel {
 public:
  /// Checks that every rank has the same parameter and buffer names, shapes
  /// and dtypes (a ShapeError on every rank naming the first difference and
  /// both shapes otherwise), then copies rank 0's values to every rank.
  explicit DistributedDataParallel(std::shared_ptr<nn::Module> module, DdpOptions options = {},
                                   ProcessGroup& group = ProcessGroup::world());
  ~DistributedDataParallel();
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  Variable operator()(const Variable& x) { return (*module_)(x); }  ///< the module's forward
  nn::Module& module() const { return *module_; }  ///< the wrapped module
  ProcessGroup& group() const { return group_; }  ///< the ranks it averages over

  /// Parameter `index` (in module().parameters() order) has its final
  /// gradient for this iteration: copies it into this rank's part of the
  /// window, or into its bucket, starting the bucket's all-reduce when the
  /// bucket is complete. The parameter's hook calls it.
  void gradient_ready(std::size_t index);
  /// Call after backward and before the optimizer's step: every parameter's
  /// .grad is then the mean over ranks. Under no_sync() it does nothing.
  void finish_gradient_sync();

  /// While alive, gradients stay local and accumulate over backward passes
  /// (micro-batches); the first finish_gradient_sync() after it averages the
  /// accumulated gradients.
  class NoSync {
   public:
    /// Stops syncing ddp until destroyed.
    explicit NoSync(DistributedDataParallel& ddp) : ddp_(ddp), previous_(ddp.sync_) { ddp.sync_ = false; }
    ~NoSync() { ddp_.sync_ = previous_; }
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DistributedDataParallel& ddp_;
    bool previous_;
  };
  NoSync no_sync() { return NoSync(*this); }  ///< a NoSync for this wrapper, as PyTorch's `with ddp.no_sync():`

  GradientReduction reduction() const { return reduction_; }  ///< the way chosen (never automatic)
  /// Under all_reduce: the buckets (0 under shared_memory).
  std::size_t bucket_count() const;
  /// Buckets whose all-reduce has started in this iteration.
  std::size_t buckets_started() const;
  /// Parameter indices of bucket b, in the order they were packed.
  std::vector<std::size_t> bucket(std::size_t b) const;
  /// Seconds the last finish_gradient_sync() spent waiting for the other
  /// ranks: for all-reduces still in flight, or at shared_memory's barrier.
  double last_wait_seconds() const { return last_wait_; }

 private:
  void check_same_model();
  void make_buckets();
  void make_window();
  void launch_ready_buckets();
  void wait_for_buckets();
  void wait_for_window();
  struct State;
  struct Hooks;
  std::shared_ptr<nn::Module> module_;
  ProcessGroup& group_;
  DdpOptions options_;
  GradientReduction reduction_;
  std::vector<Variable> params_;
  std::unique_ptr<State> state_;
  std::unique_ptr<Hooks> hooks_;
  bool sync_ = true;
  double last_wait_ = 0;
};

}  // namespace zg::distributed
