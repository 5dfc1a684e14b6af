// DataParallel for the train command: zerograd::distributed, or an error
// naming the missing MPI when the build had none.
#include "train_distributed.hpp"

#ifdef ZEROGRAD_WITH_DISTRIBUTED
#include <zerograd/distributed.hpp>
#endif

namespace zg::examples {

#ifdef ZEROGRAD_WITH_DISTRIBUTED
struct DataParallel::State {
  distributed::ProcessGroup& group = distributed::ProcessGroup::world();
  std::unique_ptr<distributed::DistributedDataParallel> ddp;
};

DataParallel::DataParallel() : state_(std::make_unique<State>()) {}
int DataParallel::rank() const { return state_->group.rank(); }
int DataParallel::size() const { return state_->group.size(); }
int DataParallel::local_size() const { return state_->group.local_size(); }

nn::data::DataLoader::Options DataParallel::loader_options(const nn::data::TensorDataset& data, std::size_t global_batch,
                                                           std::uint64_t seed, nn::data::DataLoader::Options base) {
  return distributed::data_parallel_options(state_->group, data, global_batch, seed, base);
}

void DataParallel::wrap(std::shared_ptr<nn::Module> model) {
  state_->ddp = std::make_unique<distributed::DistributedDataParallel>(std::move(model), distributed::DdpOptions{},
                                                                       state_->group);
}

std::string DataParallel::reduction() const {
  return state_->ddp->reduction() == distributed::GradientReduction::shared_memory ? "a shared-memory window"
                                                                                    : "all-reduce buckets";
}

void DataParallel::sync_gradients() { state_->ddp->finish_gradient_sync(); }

int DataParallel::max(int value) {
  std::vector<std::uint64_t> all = state_->group.all_gather(std::uint64_t(value));
  std::uint64_t m = 0;
  for (auto v : all) m = std::max(m, v);
  return int(m);
}

void DataParallel::mean(std::vector<double>& values) {
  state_->group.all_reduce_sum(values.data(), values.size());
  for (double& v : values) v /= state_->group.size();
}

void DataParallel::abort(int code) { state_->group.abort(code); }
#else
struct DataParallel::State {};
DataParallel::DataParallel() {
  throw Error("--distributed: this train was built without MPI (install libopenmpi-dev and rebuild)");
}
int DataParallel::rank() const { return 0; }
int DataParallel::size() const { return 1; }
int DataParallel::local_size() const { return 1; }
nn::data::DataLoader::Options DataParallel::loader_options(const nn::data::TensorDataset&, std::size_t, std::uint64_t,
                                                           nn::data::DataLoader::Options base) {
  return base;
}
void DataParallel::wrap(std::shared_ptr<nn::Module>) {}
std::string DataParallel::reduction() const { return {}; }
void DataParallel::sync_gradients() {}
int DataParallel::max(int value) { return value; }
void DataParallel::mean(std::vector<double>&) {}
void DataParallel::abort(int code) { std::exit(code); }
#endif

DataParallel::~DataParallel() = default;

}  // namespace zg::examples
