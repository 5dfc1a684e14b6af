#pragma once
// Data: IDX files (MNIST, Fashion-MNIST), the spiral data set, transforms
// and a DataLoader.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "zerograd/random.hpp"
#include "zerograd/variable.hpp"

namespace zg::nn::data {

// An unsigned-byte IDX array (the only type MNIST-style files use).
struct IdxArray {
  std::vector<std::size_t> shape;
  std::vector<std::uint8_t> values;
};

// The most bytes read_idx reads unless told otherwise: Fashion-MNIST's
// training images are 47 MB. A header declaring more is refused at once.
constexpr std::size_t kIdxDefaultMaxBytes = std::size_t{512} << 20;

// Reads an IDX file, gzip-compressed or not. Checks the magic number, the
// element type, every dimension, the declared size against max_bytes and
// the file's size, the length and the gzip trailer; memory never exceeds
// what the header declares. Any problem, including a failed allocation or
// read (with the OS's or zlib's cause), is a zg::IOError naming the file and
// the byte offset.
IdxArray read_idx(const std::string& path, std::size_t max_bytes = kIdxDefaultMaxBytes);

// Images as float in [0, 1], shaped (N, 1, H, W), and labels as float
// class indices (N).
struct Dataset {
  Tensor<float> images;
  Tensor<float> labels;
  std::size_t size() const { return labels.size(); }
  std::size_t classes = 10;
  // The first n samples (or all when n >= size()).
  Dataset head(std::size_t n) const;
  // Samples [begin, end).
  Dataset slice(std::size_t begin, std::size_t end) const;
};

// Where Debian's dataset-fashion-mnist package puts its files.
const char* default_data_dir();

// Loads <dir>/train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]
// (train = true) or the t10k-* pair; checks that counts and shapes agree.
// max_bytes bounds each file as in read_idx.
Dataset load_idx_dataset(const std::string& dir, bool train, std::size_t max_bytes = kIdxDefaultMaxBytes);

// Transforms.
Tensor<float> flatten_images(const Tensor<float>& images);  // (N, ...) -> (N, D)
Tensor<float> one_hot(const Tensor<float>& labels, std::size_t classes);

// The spiral data set (3 arms by default): points (N, 2), labels (N).
Dataset spiral(std::size_t points_per_class, std::size_t classes = 3, std::uint64_t seed = 1984);

// Note [Sharded epochs]: with replicas > 1, each of `replicas` processes
// (ranks) runs a DataLoader over the same data with the same options except
// its rank. An epoch is one permutation of all samples, the same on every
// rank; global batch k is positions [k B, (k + 1) B) of it, B = replicas x
// batch_size, and rank r reads the r-th of its `replicas` equal contiguous
// slices. So the ranks' batches are disjoint, together they are the batch
// one process would read with batch_size B, and order() and cursor() (in
// samples of the whole epoch) mean the same for any rank count. The last
// global batch, m < B samples: unless drop_last, each rank reads m /
// replicas of them (rounded down, so all ranks average equal-sized batches)
// and the m % replicas left over are skipped this epoch; when m < replicas
// there is no last batch. With replicas = 1 that is the usual last batch of m.
// For every rank to draw the same permutation, set shuffle_seed: epoch e
// (the e-th reset(), the constructor's being 0; or as set by set_epoch) is
// shuffled by a Generator seeded shuffle_seed + e, not the loader's.

// Batches over a Dataset, shuffled each epoch with a Generator.
class DataLoader {
 public:
  struct Options {
    std::size_t batch_size = 100;  // per rank (Note [Sharded epochs])
    bool shuffle = true;
    bool drop_last = false;
    bool flatten = false;  // (N, D) batches instead of (N, 1, H, W)
    std::size_t replicas = 1;  // data-parallel processes, and this one's rank
    std::size_t rank = 0;
    std::optional<std::uint64_t> shuffle_seed = std::nullopt;
  };
  // The loader reads `data` in place: it must outlive the loader (a
  // temporary is refused at compile time).
  DataLoader(const Dataset& data, Options options, Generator& gen = generator());
  DataLoader(Dataset&& data, Options options, Generator& gen = generator()) = delete;

  struct Batch {
    Variable x, t;
  };
  // Starts a new epoch (reshuffling when enabled).
  void reset();
  bool next(Batch& batch);
  std::size_t batches_per_epoch() const;
  std::size_t samples() const { return data_.size(); }
  std::size_t batch_size() const { return options_.batch_size; }
  // What all ranks read in one step: batch_size x replicas.
  std::size_t global_batch_size() const { return options_.batch_size * options_.replicas; }
  // The epoch the next reset() shuffles for (with shuffle_seed).
  std::uint64_t epoch() const { return epoch_; }
  void set_epoch(std::uint64_t epoch) { epoch_ = epoch; }
  // Where the epoch stands: the (shuffled) order and the next position in
  // it. A checkpoint holding both, with the generator, resumes mid-epoch.
  const std::vector<std::size_t>& order() const { return order_; }
  std::size_t cursor() const { return cursor_; }
  // Continues an epoch from a saved order and position; throws
  // zg::ValueError unless order is a permutation of the samples and cursor
  // lies within it.
  void restore(std::vector<std::size_t> order, std::size_t cursor);

 private:
  const Dataset& data_;
  Options options_;
  Generator& gen_;
  std::vector<std::size_t> order_;
  std::size_t cursor_ = 0;
  std::uint64_t epoch_ = 0;
};

}  // namespace zg::nn::data
