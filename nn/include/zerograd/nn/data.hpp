#pragma once
/// @file
/// Data: IDX files (MNIST, Fashion-MNIST), the spiral data set, transforms
/// and a DataLoader.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "zerograd/random.hpp"
#include "zerograd/variable.hpp"

/// @namespace zg::nn::data
/// Data sets, samplers, transforms and loaders: IDX files (MNIST,
/// Fashion-MNIST), the spiral data set, DataLoader, SequenceBatches.
namespace zg::nn::data {

/// An unsigned-byte IDX array (the only type MNIST-style files use).
struct IdxArray {
  std::vector<std::size_t> shape;  ///< the dimensions, as the header declares them
  std::vector<std::uint8_t> values;  ///< row-major
};

/// The most bytes read_idx reads unless told otherwise: Fashion-MNIST's
/// training images are 47 MB. A header declaring more is refused at once.
constexpr std::size_t kIdxDefaultMaxBytes = std::size_t{512} << 20;

/// Reads an IDX file, gzip-compressed or not. Checks the magic number, the
/// element type, every dimension, the declared size against max_bytes and
/// the file's size, the length and the gzip trailer; memory never exceeds
/// what the header declares. Any problem, including a failed allocation or
/// read (with the OS's or zlib's cause), is a zg::IOError naming the file and
/// the byte offset.
IdxArray read_idx(const std::string& path, std::size_t max_bytes = kIdxDefaultMaxBytes);

/// One sample: the input and its target, as PyTorch's Dataset returns them.
struct Example {
  Tensor<float> x;  ///< the input
  Tensor<float> target;  ///< the target: a 0-d class index, or any array
};

/// PyTorch's map-style Dataset: size() samples, get(i) the i-th. A
/// DataLoader with prefetch calls get() from its background thread while the
/// training loop runs, so get() must not change shared state (it is const).
/// get(i) with i >= size() is a zg::ValueError.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::size_t size() const = 0;  ///< the number of samples
  virtual Example get(std::size_t i) const = 0;  ///< sample i
};

/// In-memory arrays (PyTorch's TensorDataset of an input and a label tensor):
/// images (N, ...), say floats in [0, 1] shaped (N, 1, H, W), and labels as
/// float class indices (N). get(i) gives images[i] and the 0-d labels[i]. The
/// DataLoader gathers its rows straight into a batch (no get() per sample).
class TensorDataset : public Dataset {
 public:
  TensorDataset() = default;  ///< no samples
  /// Throws zg::ValueError unless images and labels have the same first
  /// dimension and labels is 1-d.
  TensorDataset(Tensor<float> images, Tensor<float> labels, std::size_t classes = 10);
  Tensor<float> images;  ///< (N, ...)
  Tensor<float> labels;  ///< (N) float class indices
  std::size_t classes = 10;  ///< the number of classes
  std::size_t size() const override { return labels.size(); }  ///< N
  Example get(std::size_t i) const override;  ///< images[i] and the 0-d labels[i]
  /// Throws zg::ValueError naming both shapes when images and labels do not
  /// hold the same number of samples (the fields are public).
  void check(const std::string& op) const;
  /// The first n samples (or all when n >= size()).
  TensorDataset head(std::size_t n) const;
  /// Samples [begin, end).
  TensorDataset slice(std::size_t begin, std::size_t end) const;
};

/// Arrays prepared with numpy: np.savez(path, x=images, y=labels). x is
/// (N, ...) of any dtype load_npy reads, unsigned bytes scaled to [0, 1] as
/// read_idx's images are (other types are kept as they are); y is (N) whole
/// numbers >= 0 (class indices; classes is the largest plus one). Shapes and
/// sizes are checked before anything is allocated; every failure is a
/// zg::IOError naming the file, the member and the byte offset.
TensorDataset load_npz_dataset(const std::string& path, const std::string& x_key = "x",
                               const std::string& y_key = "y");

/// Where Debian's dataset-fashion-mnist package puts its files.
const char* default_data_dir();

/// Loads `<dir>/train-images-idx3-ubyte[.gz]` + train-labels-idx1-ubyte[.gz]
/// (train = true) or the t10k-* pair; checks that counts and shapes agree.
/// max_bytes bounds each file as in read_idx.
TensorDataset load_idx_dataset(const std::string& dir, bool train, std::size_t max_bytes = kIdxDefaultMaxBytes);

// Transforms.
Tensor<float> flatten_images(const Tensor<float>& images);  ///< (N, ...) -> (N, D)
/// Class indices (N) -> (N, classes) of 0 and 1.
Tensor<float> one_hot(const Tensor<float>& labels, std::size_t classes);

/// The spiral data set (3 arms by default): points (N, 2), labels (N).
TensorDataset spiral(std::size_t points_per_class, std::size_t classes = 3, std::uint64_t seed = 1984);

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

/// Samplers decide each epoch's order, as PyTorch's: every sample once per
/// epoch (the DataLoader checks that order() is a permutation of 0..n-1).
/// transform_seed() is what the epoch's random transforms draw from (Note
/// [Deterministic batches]); nullopt: the loader draws it from its generator.
/// replicas() and rank() say which slice of each global batch this process
/// reads (Note [Sharded epochs]).
class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::vector<std::size_t> order(std::size_t n, std::uint64_t epoch) = 0;  ///< the order of n samples in epoch
  /// The seed of an epoch's random transforms.
  virtual std::optional<std::uint64_t> transform_seed(std::uint64_t) const { return std::nullopt; }
  virtual std::size_t replicas() const { return 1; }  ///< processes sharing each global batch
  virtual std::size_t rank() const { return 0; }  ///< this process's slice of it
};

/// 0, 1, ..., n - 1 every epoch.
class SequentialSampler : public Sampler {
 public:
  std::vector<std::size_t> order(std::size_t n, std::uint64_t epoch) override;  ///< the order of n samples in epoch
};

/// A new permutation every epoch: drawn from gen, or, with a seed, from a
/// Generator seeded seed + epoch (the same on every process, and repeatable
/// after set_epoch).
class RandomSampler : public Sampler {
 public:
  explicit RandomSampler(Generator& gen = generator()) : gen_(&gen) {}  ///< drawing from gen, which must outlive it
  explicit RandomSampler(std::uint64_t seed) : seed_(seed) {}  ///< seeded: epoch e from seed + e
  std::vector<std::size_t> order(std::size_t n, std::uint64_t epoch) override;  ///< the order of n samples in epoch
  /// The seed of an epoch's random transforms.
  std::optional<std::uint64_t> transform_seed(std::uint64_t epoch) const override;

 private:
  Generator* gen_ = nullptr;
  std::optional<std::uint64_t> seed_;
};

/// PyTorch's DistributedSampler(num_replicas, rank, shuffle, seed): the
/// permutation of a RandomSampler(seed) (or 0..n-1 without shuffle), the same
/// on every rank, of which this rank reads its slice of every global batch
/// (Note [Sharded epochs]; PyTorch instead strides the order by rank and pads
/// it to a multiple of the rank count). Throws zg::ValueError unless rank <
/// replicas.
class DistributedSampler : public Sampler {
 public:
  /// PyTorch's arguments.
  DistributedSampler(std::size_t replicas, std::size_t rank, bool shuffle = true, std::uint64_t seed = 0);
  std::vector<std::size_t> order(std::size_t n, std::uint64_t epoch) override;  ///< the order of n samples in epoch
  /// The seed of an epoch's random transforms.
  std::optional<std::uint64_t> transform_seed(std::uint64_t epoch) const override;
  std::size_t replicas() const override { return replicas_; }  ///< processes sharing each global batch
  std::size_t rank() const override { return rank_; }  ///< this process's slice of it

 private:
  std::size_t replicas_, rank_;
  bool shuffle_;
  std::uint64_t seed_;
};

class Transform;  // transforms.hpp

// Note [Deterministic batches]: a batch depends only on the epoch's order,
// its position in it and the epoch's transform seed, never on which thread
// assembles it or when. Random transforms see, for the sample at position p
// of the epoch, a Generator seeded from (transform seed, p); the seed is
// drawn once per epoch in reset(), on the caller's thread, and only when
// there is a transform (so a loader without one draws exactly what it drew
// before transforms existed). So prefetching changes nothing the training
// loop sees, and with a seeded sampler every rank count augments a sample
// the same way. With prefetch = N a background thread assembles up to N
// batches ahead of next(); reset(), restore() and the destructor stop and
// join it first, and an exception it hits (in get() or a transform) is
// rethrown by the next() that reaches that batch, which is then not
// consumed: calling next() again retries it. The thread calls get() and the
// transforms while the caller trains, so both must be safe to call
// concurrently with the caller's own work; it gathers without zerograd's
// thread pool, which it would otherwise take from the training kernels.

/// Batches over a Dataset in the order its sampler gives.
class DataLoader {
 public:
  /// How a DataLoader batches, shuffles and shards.
  struct Options {
    std::size_t batch_size = 100;  ///< per rank (Note [Sharded epochs])
    bool shuffle = true;  ///< a new permutation every epoch, else in order
    bool drop_last = false;  ///< skip a last batch smaller than batch_size
    bool flatten = false;  ///< (N, D) batches instead of (N, 1, H, W)
    ///@{
    /// Data-parallel processes, and this one's rank (Note [Sharded epochs]).
    std::size_t replicas = 1;
    std::size_t rank = 0;
    ///@}
    /// Epoch e is shuffled by a Generator seeded shuffle_seed + e.
    std::optional<std::uint64_t> shuffle_seed = std::nullopt;
    /// When set, the sampler decides the order and the shard: shuffle is
    /// ignored, and replicas, rank and shuffle_seed must keep their defaults.
    /// Unset: RandomSampler (seeded with shuffle_seed, else drawing from the
    /// loader's generator) or SequentialSampler, sharded by replicas and rank.
    std::shared_ptr<Sampler> sampler = nullptr;
    /// Applied to every sample's x (Note [Deterministic batches]).
    std::shared_ptr<const Transform> transform = nullptr;
    std::size_t prefetch = 0;  ///< batches a background thread assembles ahead
  };
  /// The loader reads `data` in place: it must outlive the loader (a
  /// temporary is refused at compile time).
  DataLoader(const Dataset& data, Options options, Generator& gen = generator());
  DataLoader(Dataset&& data, Options options, Generator& gen = generator()) = delete;
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// One batch: inputs x and targets t.
  struct Batch {
    ///@{
    /// x (N, ...) or (N, D), t (N, ...).
    Variable x, t;
    ///@}
  };
  /// Starts a new epoch (reshuffling when enabled).
  void reset();
  /// The next batch of this epoch into batch; false at the end of it. x is
  /// the samples' x stacked (N, ...) or flattened (N, D); t the targets
  /// stacked (N, ...). A sample whose x or target shape differs from the
  /// batch's first is a zg::ValueError naming both.
  bool next(Batch& batch);
  std::size_t batches_per_epoch() const;  ///< next() calls that return true in an epoch
  std::size_t samples() const { return data_.size(); }  ///< the data set's size
  std::size_t batch_size() const { return options_.batch_size; }  ///< per rank
  /// What all ranks read in one step: batch_size x replicas.
  std::size_t global_batch_size() const { return options_.batch_size * replicas_; }
  /// The epoch the next reset() shuffles for (with shuffle_seed).
  std::uint64_t epoch() const { return epoch_; }
  void set_epoch(std::uint64_t epoch) { epoch_ = epoch; }  ///< sets it, to resume or to align ranks
  /// Where the epoch stands: the (shuffled) order and the next position in
  /// it. A checkpoint holding both, with the generator, resumes mid-epoch.
  const std::vector<std::size_t>& order() const { return order_; }
  std::size_t cursor() const { return cursor_; }  ///< the next position in order()
  /// The seed this epoch's random transforms draw from (Note [Deterministic
  /// batches]); a checkpoint of a run with random transforms saves it too.
  std::uint64_t transform_seed() const { return transform_seed_; }
  /// Continues an epoch from a saved order and position (and transform
  /// seed); throws zg::ValueError unless order is a permutation of the
  /// samples and cursor lies within it.
  void restore(std::vector<std::size_t> order, std::size_t cursor,
               std::optional<std::uint64_t> transform_seed = std::nullopt);

 private:
  struct Tensors {
    Tensor<float> x, t;
  };
  class Prefetcher;
  std::size_t batch_at(std::size_t cursor) const;
  std::size_t after(std::size_t cursor) const;
  Tensors assemble(std::size_t cursor, bool use_pool) const;
  Tensors gather(const std::size_t* order, std::size_t b, bool use_pool) const;
  Tensors collate(std::size_t first, std::size_t b) const;
  void stop_prefetch();

  const Dataset& data_;
  const TensorDataset* tensors_ = nullptr;  // the fast path (no transform)
  Options options_;
  Generator& gen_;
  std::shared_ptr<Sampler> sampler_;
  std::size_t replicas_ = 1, rank_ = 0;
  std::vector<std::size_t> order_;
  std::size_t cursor_ = 0;
  std::uint64_t epoch_ = 0;
  std::uint64_t transform_seed_ = 0;
  std::unique_ptr<Prefetcher> prefetch_;  // last: stopped before what it reads goes
};

/// Windows over one long token sequence, in order, for a language model
/// trained with truncated backpropagation through time (docs/sequences.md).
/// The N tokens are cut into batch_size rows of L = N / batch_size tokens
/// (the N % batch_size at the end are not read): row b holds tokens
/// [b L, (b + 1) L). Batch k is, in every row, the n tokens at positions
/// [k bptt, k bptt + n) of that row as x (batch_size, n), and the tokens one
/// further on as the targets y (batch_size, n), n = min(bptt, L - 1 - k bptt).
/// Each batch continues every row where the previous batch stopped, so the
/// hidden state carried from one batch to the next (detached) belongs to the
/// same row's text. The last window is shorter unless L - 1 divides by bptt;
/// with drop_last it is skipped. Tokens are stored as float class indices
/// (what Embedding and cross_entropy read), so each must be below 2^24.
class SequenceBatches {
 public:
  /// Throws zg::ValueError when batch_size or bptt is 0, a token is 2^24 or
  /// more, or the sequence is too short to give each row a window (N <
  /// 2 batch_size, or with drop_last N / batch_size < bptt + 1).
  SequenceBatches(const std::vector<std::size_t>& tokens, std::size_t batch_size, std::size_t bptt,
                  bool drop_last = false);
  /// One window: tokens x and the next tokens y.
  struct Batch {
    ///@{
    /// x and y, each (batch_size, n).
    Variable x, y;
    ///@}
  };
  /// The next window into batch; false after the last one (then reset()).
  bool next(Batch& batch);
  /// Back to the first window: a new epoch over the same rows.
  void reset() { cursor_ = 0; }
  std::size_t batches_per_epoch() const;  ///< next() calls that return true in an epoch
  std::size_t batch_size() const { return batch_size_; }  ///< rows
  std::size_t bptt() const { return bptt_; }  ///< the longest window
  /// Tokens per row, L.
  std::size_t row_length() const { return row_length_; }
  /// The row position the next window starts at; restore(cursor) continues a
  /// saved epoch (zg::ValueError unless cursor is a window start or the end).
  std::size_t cursor() const { return cursor_; }
  void restore(std::size_t cursor);  ///< continues from a cursor() saved before

 private:
  std::vector<float> rows_;  // batch_size rows of row_length_ tokens
  std::size_t batch_size_, bptt_, row_length_;
  bool drop_last_;
  std::size_t cursor_ = 0;
};

}  // namespace zg::nn::data
