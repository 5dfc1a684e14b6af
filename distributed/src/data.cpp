// Data-parallel DataLoader options, checked across ranks.
#include "zerograd/distributed/data.hpp"

namespace zg::distributed {

nn::data::DataLoader::Options data_parallel_options(ProcessGroup& group, const nn::data::TensorDataset& data,
                                                    std::size_t global_batch, std::uint64_t shuffle_seed,
                                                    nn::data::DataLoader::Options base) {
  const auto ranks = std::size_t(group.size());
  if (global_batch == 0 || global_batch % ranks != 0)
    throw ValueError("distributed: the global batch of " + std::to_string(global_batch) + " does not divide into " +
                     std::to_string(ranks) + " equal per-rank batches");
  group.check_same(data.size(), "training samples");
  std::uint64_t label_sum = 0;
  for (float l : data.labels) label_sum += std::uint64_t(l);
  group.check_same(label_sum, "sum of the training labels (the ranks loaded different data)");
  base.batch_size = global_batch / ranks;
  base.replicas = ranks;
  base.rank = std::size_t(group.rank());
  base.shuffle_seed = shuffle_seed;
  return base;
}

}  // namespace zg::distributed
