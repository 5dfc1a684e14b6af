#pragma once
/// @file
/// DataLoader options for data-parallel training (Note [Sharded epochs] in
/// zerograd/nn/data.hpp).
#include <cstddef>
#include <cstdint>

#include "zerograd/distributed/process_group.hpp"
#include "zerograd/nn/data.hpp"

namespace zg::distributed {

/// This rank's options for reading `global_batch` samples per step over all
/// ranks: batch_size = global_batch / world size, replicas and rank from the
/// group, every epoch shuffled from shuffle_seed + epoch (when base.shuffle).
/// Throws ValueError on every rank when global_batch does not divide by the
/// world size, or when the ranks' data sets differ in size or labels (each
/// rank must load the same data: uneven data would leave some ranks waiting).
nn::data::DataLoader::Options data_parallel_options(ProcessGroup& group, const nn::data::TensorDataset& data,
                                                    std::size_t global_batch, std::uint64_t shuffle_seed,
                                                    nn::data::DataLoader::Options base = {});

}  // namespace zg::distributed
