// Samplers, the DataLoader and its prefetching thread (Notes [Sharded
// epochs] and [Deterministic batches] in data.hpp).
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "zerograd/nn/data.hpp"
#include "zerograd/nn/transforms.hpp"
#include "zerograd/parallel.hpp"

namespace zg::nn::data {
namespace {

std::vector<std::size_t> iota(std::size_t n) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  return order;
}

// SplitMix64's finaliser: nearby inputs (seed + epoch, seed + position) give
// unrelated outputs.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::vector<std::size_t> seeded_permutation(std::size_t n, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<std::size_t> order = iota(n);
  Generator epoch_gen(seed + epoch);
  std::shuffle(order.begin(), order.end(), epoch_gen);
  return order;
}

void check_permutation(const std::vector<std::size_t>& order, std::size_t n, const std::string& op) {
  if (order.size() != n)
    throw ValueError(op + ": an order of " + std::to_string(order.size()) + " samples for a data set of " +
                     std::to_string(n));
  std::vector<bool> seen(n, false);
  for (std::size_t i : order) {
    if (i >= n || seen[i])
      throw ValueError(op + ": the order is not a permutation of 0.." + std::to_string(n - 1) + " (index " +
                       std::to_string(i) + ")");
    seen[i] = true;
  }
}

void check_shard(std::size_t replicas, std::size_t rank, const std::string& op) {
  if (replicas == 0) throw ValueError(op + ": replicas must be positive");
  if (rank >= replicas)
    throw ValueError(op + ": rank " + std::to_string(rank) + " is not below replicas " + std::to_string(replicas));
}

}  // namespace

std::vector<std::size_t> SequentialSampler::order(std::size_t n, std::uint64_t) { return iota(n); }

std::vector<std::size_t> RandomSampler::order(std::size_t n, std::uint64_t epoch) {
  if (seed_) return seeded_permutation(n, *seed_, epoch);
  std::vector<std::size_t> order = iota(n);
  std::shuffle(order.begin(), order.end(), *gen_);
  return order;
}

std::optional<std::uint64_t> RandomSampler::transform_seed(std::uint64_t epoch) const {
  if (!seed_) return std::nullopt;
  return mix(mix(*seed_ + epoch));
}

DistributedSampler::DistributedSampler(std::size_t replicas, std::size_t rank, bool shuffle, std::uint64_t seed)
    : replicas_(replicas), rank_(rank), shuffle_(shuffle), seed_(seed) {
  check_shard(replicas, rank, "DistributedSampler");
}

std::vector<std::size_t> DistributedSampler::order(std::size_t n, std::uint64_t epoch) {
  return shuffle_ ? seeded_permutation(n, seed_, epoch) : iota(n);
}

std::optional<std::uint64_t> DistributedSampler::transform_seed(std::uint64_t epoch) const {
  return mix(mix(seed_ + epoch));
}

// The background thread of Note [Deterministic batches]: assembles the
// batches from `cursor` on into a queue of at most `depth`, in order, until
// the epoch ends, an error (queued in place of its batch), or the stop flag.
class DataLoader::Prefetcher {
 public:
  Prefetcher(const DataLoader& loader, std::size_t cursor, std::size_t depth)
      : loader_(loader), depth_(depth), thread_([this, cursor] { run(cursor); }) {}
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  // The next batch, waiting for it; rethrows the worker's exception.
  Tensors pop() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !queue_.empty(); });
    Item item = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    changed_.notify_all();
    if (item.error) std::rethrow_exception(item.error);
    return std::move(item.batch);
  }

 private:
  struct Item {
    Tensors batch;
    std::exception_ptr error;
  };
  void run(std::size_t cursor) {
    for (; loader_.batch_at(cursor) > 0; cursor = loader_.after(cursor)) {
      Item item;
      try {
        item.batch = loader_.assemble(cursor, false);
      } catch (...) {
        item.error = std::current_exception();
      }
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || queue_.size() < depth_; });
      if (stop_) return;
      const bool failed = bool(item.error);
      queue_.push_back(std::move(item));
      lock.unlock();
      changed_.notify_all();
      if (failed) return;
    }
  }

  const DataLoader& loader_;
  const std::size_t depth_;
  std::mutex mutex_;
  std::condition_variable changed_;  // the queue or stop_ changed
  std::deque<Item> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is built
};

DataLoader::DataLoader(const Dataset& data, Options options, Generator& gen)
    : data_(data), options_(std::move(options)), gen_(gen) {
  if (options_.batch_size == 0) throw ValueError("DataLoader: batch_size must be positive");
  check_shard(options_.replicas, options_.rank, "DataLoader");
  if (options_.sampler) {
    if (options_.replicas != 1 || options_.rank != 0 || options_.shuffle_seed)
      throw ValueError("DataLoader: with a sampler, the sampler decides the order and the shard; replicas " +
                       std::to_string(options_.replicas) + ", rank " + std::to_string(options_.rank) +
                       (options_.shuffle_seed ? " and a shuffle_seed" : "") + " must be left at 1, 0 and unset");
    sampler_ = options_.sampler;
    replicas_ = sampler_->replicas();
    rank_ = sampler_->rank();
    check_shard(replicas_, rank_, "DataLoader: the sampler's");
  } else {
    if (!options_.shuffle) sampler_ = std::make_shared<SequentialSampler>();
    else if (options_.shuffle_seed) sampler_ = std::make_shared<RandomSampler>(*options_.shuffle_seed);
    else sampler_ = std::make_shared<RandomSampler>(gen_);
    replicas_ = options_.replicas;
    rank_ = options_.rank;
  }
  if (const auto* t = dynamic_cast<const TensorDataset*>(&data_)) {
    t->check("DataLoader");
    if (!options_.transform) tensors_ = t;
  }
  reset();
}

DataLoader::~DataLoader() { stop_prefetch(); }

void DataLoader::stop_prefetch() { prefetch_.reset(); }

void DataLoader::reset() {
  stop_prefetch();
  std::vector<std::size_t> order = sampler_->order(data_.size(), epoch_);
  check_permutation(order, data_.size(), "DataLoader: the sampler's order for epoch " + std::to_string(epoch_));
  order_ = std::move(order);
  if (options_.transform) transform_seed_ = sampler_->transform_seed(epoch_).value_or(gen_());
  ++epoch_;
  cursor_ = 0;
}

void DataLoader::restore(std::vector<std::size_t> order, std::size_t cursor,
                         std::optional<std::uint64_t> transform_seed) {
  const std::size_t n = data_.size();
  check_permutation(order, n, "DataLoader::restore");
  if (cursor > n) throw ValueError("DataLoader::restore: position " + std::to_string(cursor) + " is past " + std::to_string(n));
  stop_prefetch();
  order_ = std::move(order);
  cursor_ = cursor;
  if (transform_seed) transform_seed_ = *transform_seed;
}

std::size_t DataLoader::batches_per_epoch() const {
  const std::size_t n = data_.size(), global = global_batch_size();
  const bool last = !options_.drop_last && (n % global) / replicas_ > 0;
  return n / global + (last ? 1 : 0);
}

// This rank's share (Note [Sharded epochs]) of the global batch at cursor
// (0: the epoch is over), and where the next global batch starts.
std::size_t DataLoader::batch_at(std::size_t cursor) const {
  const std::size_t left = data_.size() - cursor;
  if (left >= global_batch_size()) return options_.batch_size;
  return options_.drop_last ? 0 : left / replicas_;
}

std::size_t DataLoader::after(std::size_t cursor) const {
  const std::size_t left = data_.size() - cursor;
  return left >= global_batch_size() ? cursor + global_batch_size() : data_.size();
}

bool DataLoader::next(Batch& batch) {
  if (batch_at(cursor_) == 0) {
    cursor_ = data_.size();
    return false;
  }
  Tensors out;
  if (options_.prefetch == 0) {
    out = assemble(cursor_, true);
  } else {
    if (!prefetch_) prefetch_ = std::make_unique<Prefetcher>(*this, cursor_, options_.prefetch);
    try {
      out = prefetch_->pop();
    } catch (...) {
      stop_prefetch();  // it stopped at the failed batch; next() retries from there
      throw;
    }
  }
  cursor_ = after(cursor_);
  batch.x = Variable(std::move(out.x));
  batch.t = Variable(std::move(out.t));
  return true;
}

DataLoader::Tensors DataLoader::assemble(std::size_t cursor, bool use_pool) const {
  const std::size_t b = batch_at(cursor);
  const std::size_t first = cursor + rank_ * b;
  Tensors out = tensors_ ? gather(order_.data() + first, b, use_pool) : collate(first, b);
  if (options_.flatten) {
    const std::size_t per = b ? out.x.size() / b : 0;
    out.x.reshape({b, per});
  }
  return out;
}

// The fast path: rows of the in-memory arrays straight into the batch.
DataLoader::Tensors DataLoader::gather(const std::size_t* order, std::size_t b, bool use_pool) const {
  const TensorDataset& d = *tensors_;
  const std::size_t per = d.size() ? d.images.size() / d.size() : 0;
  std::vector<std::size_t> shape(d.images.shape().begin(), d.images.shape().end());
  shape[0] = b;
  Tensors out{Tensor<float>::from_shape(shape), Tensor<float>::from_shape({b})};
  const auto rows = [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) {
      const float* row = d.images.data() + order[i] * per;
      std::copy(row, row + per, out.x.data() + i * per);
      out.t.data()[i] = d.labels.data()[order[i]];
    }
  };
  // Gathering shuffled rows is memory-bound: large batches use every thread.
  if (use_pool)
    zg::detail::parallel_for(b, std::max<std::size_t>(1, zg::detail::kElementGrain / std::max<std::size_t>(per, 1)), rows);
  else
    rows(0, b);
  return out;
}

namespace {
void check_same_shape(const Tensor<float>& a, const Shape& want, const char* what, std::size_t k, std::size_t index) {
  if (Shape(a.shape().begin(), a.shape().end()) == want) return;
  throw ValueError(std::string("DataLoader: sample ") + std::to_string(k) + " of the batch (index " +
                   std::to_string(index) + ") has " + what + " of shape " + shape_str(a.shape()) +
                   ", the batch's first has " + shape_str(want));
}

void copy_into(const Tensor<float>& a, Tensor<float>& batch, std::size_t k) {
  std::copy(a.data(), a.data() + a.size(), batch.data() + k * a.size());
}
}  // namespace

// Any Dataset: get() each sample, transform its x, stack.
DataLoader::Tensors DataLoader::collate(std::size_t first, std::size_t b) const {
  Tensors out;
  Shape x_shape, t_shape;
  for (std::size_t k = 0; k < b; ++k) {
    const std::size_t index = order_[first + k];
    Example e = data_.get(index);
    if (options_.transform) {
      Generator sample_gen(mix(transform_seed_ ^ mix(first + k)));
      e.x = (*options_.transform)(e.x, sample_gen);
    }
    if (k == 0) {
      x_shape.assign(e.x.shape().begin(), e.x.shape().end());
      t_shape.assign(e.target.shape().begin(), e.target.shape().end());
      Shape xs{b}, ts{b};
      xs.insert(xs.end(), x_shape.begin(), x_shape.end());
      ts.insert(ts.end(), t_shape.begin(), t_shape.end());
      out = {Tensor<float>::from_shape(xs), Tensor<float>::from_shape(ts)};
    }
    check_same_shape(e.x, x_shape, "x", k, index);
    check_same_shape(e.target, t_shape, "a target", k, index);
    copy_into(e.x, out.x, k);
    copy_into(e.target, out.t, k);
  }
  return out;
}

SequenceBatches::SequenceBatches(const std::vector<std::size_t>& tokens, std::size_t batch_size, std::size_t bptt,
                                 bool drop_last)
    : batch_size_(batch_size), bptt_(bptt), row_length_(batch_size ? tokens.size() / batch_size : 0),
      drop_last_(drop_last) {
  const std::string op = "SequenceBatches(batch_size=" + std::to_string(batch_size) + ", bptt=" +
                         std::to_string(bptt) + ")";
  if (batch_size == 0 || bptt == 0) throw ValueError(op + ": batch_size and bptt must be positive");
  const std::size_t need = drop_last ? bptt + 1 : 2;
  if (row_length_ < need)
    throw ValueError(op + ": a sequence of " + std::to_string(tokens.size()) + " tokens gives rows of " +
                     std::to_string(row_length_) + ", fewer than the " + std::to_string(need) +
                     " a window and its targets need");
  rows_.reserve(batch_size * row_length_);
  for (std::size_t i = 0; i < batch_size * row_length_; ++i) {
    // Floats hold every whole number below 2^24 exactly.
    if (tokens[i] >= (std::size_t{1} << 24))
      throw ValueError(op + ": token " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                       " is not below 2^24");
    rows_.push_back(float(tokens[i]));
  }
}

std::size_t SequenceBatches::batches_per_epoch() const {
  const std::size_t starts = row_length_ - 1;  // positions that have a target
  return drop_last_ ? starts / bptt_ : (starts + bptt_ - 1) / bptt_;
}

void SequenceBatches::restore(std::size_t cursor) {
  const std::size_t end = row_length_ - 1;
  if (cursor > end || (cursor % bptt_ != 0 && cursor != end))
    throw ValueError("SequenceBatches::restore: cursor " + std::to_string(cursor) +
                     " is neither a window start (a multiple of bptt " + std::to_string(bptt_) +
                     ") nor the end " + std::to_string(end));
  cursor_ = cursor;
}

bool SequenceBatches::next(Batch& batch) {
  const std::size_t left = row_length_ - 1 - cursor_;
  if (left == 0 || (drop_last_ && left < bptt_)) return false;
  const std::size_t n = std::min(bptt_, left);
  Tensor<float> x = Tensor<float>::from_shape({batch_size_, n}), y = Tensor<float>::from_shape({batch_size_, n});
  for (std::size_t b = 0; b < batch_size_; ++b) {
    const float* row = rows_.data() + b * row_length_ + cursor_;
    std::copy_n(row, n, x.data() + b * n);
    std::copy_n(row + 1, n, y.data() + b * n);
  }
  batch.x = Variable(std::move(x));
  batch.y = Variable(std::move(y));
  cursor_ += n;
  return true;
}

}  // namespace zg::nn::data
