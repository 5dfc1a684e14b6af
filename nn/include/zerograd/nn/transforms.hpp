#pragma once
/// @file
/// Transforms on one (C, H, W) float image, torchvision's names and
/// semantics. A DataLoader applies them to every sample (Options::transform)
/// with a generator of the sample's own (Note [Deterministic batches] in
/// data.hpp); unlike torchvision, which draws from the global generator,
/// a transform takes the generator it draws from, so given the generator the
/// result is fixed.
#include <cstddef>
#include <memory>
#include <vector>

#include "zerograd/random.hpp"
#include "zerograd/variable.hpp"

namespace zg::nn::data {

/// A transform of one image (C, H, W), applied by a DataLoader to every
/// sample's x; random ones draw from gen (Note [Deterministic batches]).
class Transform {
 public:
  virtual ~Transform() = default;
  /// x is (C, H, W); anything else is a zg::ShapeError naming the transform.
  virtual Tensor<float> operator()(const Tensor<float>& x, Generator& gen) const = 0;
};

/// (x[c] - mean[c]) / std[c] per channel. Throws zg::ValueError when mean and
/// std differ in length or a std is not positive; applying it to an image
/// with another channel count is a zg::ShapeError.
class Normalize : public Transform {
 public:
  Normalize(std::vector<float> mean, std::vector<float> std);  ///< one mean and std per channel
  Tensor<float> operator()(const Tensor<float>& x, Generator& gen) const override;

 private:
  std::vector<float> mean_, std_;
};

/// Pads every side with `padding` zeros, then cuts a size x size window at a
/// random offset: top, then left, each uniform over the positions that fit.
/// A window larger than the padded image is a zg::ShapeError.
class RandomCrop : public Transform {
 public:
  explicit RandomCrop(std::size_t size, std::size_t padding = 0);  ///< a size x size window after padding
  Tensor<float> operator()(const Tensor<float>& x, Generator& gen) const override;

 private:
  std::size_t size_, padding_;
};

/// Mirrors the image left to right with probability p (0 <= p <= 1, else a
/// zg::ValueError): one uniform draw u in [0, 1), flipped when u < p.
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);  ///< flips with probability p
  Tensor<float> operator()(const Tensor<float>& x, Generator& gen) const override;

 private:
  double p_;
};

/// The transforms in order, each drawing from the same generator.
class Compose : public Transform {
 public:
  explicit Compose(std::vector<std::shared_ptr<const Transform>> transforms);  ///< applies transforms in order
  Tensor<float> operator()(const Tensor<float>& x, Generator& gen) const override;

 private:
  std::vector<std::shared_ptr<const Transform>> transforms_;
};

}  // namespace zg::nn::data
