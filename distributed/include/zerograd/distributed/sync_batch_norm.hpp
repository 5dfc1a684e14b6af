#pragma once
/// @file
/// SyncBatchNorm: batch normalisation with the statistics of the global
/// batch, all-reduced over the ranks, instead of each rank's local batch
/// (what nn::BatchNorm1d/2d use under DistributedDataParallel).
#include <cstddef>
#include <string>

#include "zerograd/distributed/process_group.hpp"
#include "zerograd/nn/module.hpp"

namespace zg::distributed {

/// The sum of x over all ranks, as a graph op: its backward is the sum of
/// the ranks' upstream gradients (each rank's loss depends on every rank's
/// x). Every rank must call it at the same point, forward and backward.
template <class T>
BasicVariable<T> all_reduce_sum(const BasicVariable<T>& x, ProcessGroup& group = ProcessGroup::world());

/// nn::functional::batch_norm over the union of the ranks' batches: mean and
/// variance are all-reduced (sums and counts), so every rank normalises with
/// the global batch's statistics and updates its running statistics to the
/// same values. Ranks may hold batches of different sizes. In evaluation it
/// is batch_norm with the running statistics, no communication.
template <class T>
BasicVariable<T> sync_batch_norm(const BasicVariable<T>& x, const BasicVariable<T>& gamma,
                                 const BasicVariable<T>& beta, BasicVariable<T>& running_mean,
                                 BasicVariable<T>& running_var, bool training, double momentum = 0.1,
                                 double eps = 1e-5, ProcessGroup& group = ProcessGroup::world());

/// A drop-in for BatchNorm1d (N, F) and BatchNorm2d (N, C, H, W): the same
/// parameters, buffers, defaults and names (gamma, beta, running_mean,
/// running_var), so checkpoints move between them.
class SyncBatchNorm : public nn::Module {
 public:
  /// features (F or C) normalised over every rank's batch in group.
  explicit SyncBatchNorm(std::size_t features, double momentum = 0.1, double eps = 1e-5,
                         ProcessGroup& group = ProcessGroup::world());
  Variable forward(const Variable& x) override;  ///< sync_batch_norm with this module's parameters and mode
  std::string type_name() const override { return "SyncBatchNorm"; }
  std::string extra_repr() const override;
  ///@{
  /// The parameters gamma and beta, and the buffers running_mean and
  /// running_var, each (features), as BatchNorm's.
  Variable gamma, beta, running_mean, running_var;
  ///@}

 private:
  std::size_t features_;
  double momentum_, eps_;
  ProcessGroup& group_;
};

}  // namespace zg::distributed
