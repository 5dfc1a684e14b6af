#pragma once
// What the train command needs for --distributed, from zerograd::distributed
// when the build found MPI, and an error saying so when it did not.
#include <memory>
#include <string>
#include <vector>

#include <zerograd/zerograd.hpp>

namespace zg::examples {

class DataParallel {
 public:
  // Joins the processes mpirun started (throws outside mpirun, or when
  // built without MPI).
  DataParallel();
  ~DataParallel();
  int rank() const;
  int size() const;
  int local_size() const;
  bool is_main() const { return rank() == 0; }
  // This rank's loader options for a global batch (Note [Sharded epochs]);
  // throws unless every rank has the same data and the batch divides.
  nn::data::DataLoader::Options loader_options(const nn::data::TensorDataset& data, std::size_t global_batch,
                                               std::uint64_t seed, nn::data::DataLoader::Options base);
  // Checks that every rank built the same model and copies rank 0's values.
  void wrap(std::shared_ptr<nn::Module> model);
  // How wrap()'s model averages gradients: "a shared-memory window" or "all-reduce buckets".
  std::string reduction() const;
  // After backward: every gradient becomes the mean over ranks.
  void sync_gradients();
  // The largest of the ranks' values (a stop signal every rank then agrees on).
  int max(int value);
  // Each value becomes its mean over ranks.
  void mean(std::vector<double>& values);
  [[noreturn]] void abort(int code);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace zg::examples
