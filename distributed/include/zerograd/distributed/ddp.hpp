#pragma once
// Data-parallel training: every rank runs the same model on its share of
// the global batch, and gradients are averaged across ranks before the
// optimizer's step, so all ranks take the same step as one process would
// on the whole batch.
#include <cstddef>
#include <memory>
#include <vector>

#include "zerograd/distributed/process_group.hpp"
#include "zerograd/nn/module.hpp"

namespace zg::distributed {

struct DdpOptions {
  // Gradients are averaged in buckets of about this many bytes (a bucket
  // holds at least one parameter), each all-reduced as soon as all of its
  // gradients are final.
  std::size_t bucket_bytes = std::size_t{25} << 20;
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
class DistributedDataParallel {
 public:
  // Checks that every rank has the same parameter and buffer names, shapes
  // and dtypes (a ShapeError on every rank naming the first difference and
  // both shapes otherwise), then copies rank 0's values to every rank.
  explicit DistributedDataParallel(std::shared_ptr<nn::Module> module, DdpOptions options = {},
                                   ProcessGroup& group = ProcessGroup::world());
  ~DistributedDataParallel();
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  Variable operator()(const Variable& x) { return (*module_)(x); }
  nn::Module& module() const { return *module_; }
  ProcessGroup& group() const { return group_; }

  // Parameter `index` (in module().parameters() order) has its final
  // gradient for this iteration: copies it into its bucket and starts the
  // bucket's all-reduce when it is complete. The parameter's hook calls it.
  void gradient_ready(std::size_t index);
  // Call after backward and before the optimizer's step: every parameter's
  // .grad is then the mean over ranks. Under no_sync() it does nothing.
  void finish_gradient_sync();

  // While alive, gradients stay local and accumulate over backward passes
  // (micro-batches); the first finish_gradient_sync() after it averages the
  // accumulated gradients.
  class NoSync {
   public:
    explicit NoSync(DistributedDataParallel& ddp) : ddp_(ddp), previous_(ddp.sync_) { ddp.sync_ = false; }
    ~NoSync() { ddp_.sync_ = previous_; }
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DistributedDataParallel& ddp_;
    bool previous_;
  };
  NoSync no_sync() { return NoSync(*this); }

  std::size_t bucket_count() const;
  // Buckets whose all-reduce has started in this iteration.
  std::size_t buckets_started() const;
  // Parameter indices of bucket b, in the order they were packed.
  std::vector<std::size_t> bucket(std::size_t b) const;
  // Seconds the last finish_gradient_sync() spent waiting for all-reduces
  // still in flight (what communication added to the step).
  double last_wait_seconds() const { return last_wait_; }

 private:
  void check_same_model();
  void launch_ready_buckets();
  struct State;
  struct Hooks;
  std::shared_ptr<nn::Module> module_;
  ProcessGroup& group_;
  DdpOptions options_;
  std::vector<Variable> params_;
  std::unique_ptr<State> state_;
  std::unique_ptr<Hooks> hooks_;
  bool sync_ = true;
  double last_wait_ = 0;
};

}  // namespace zg::distributed
