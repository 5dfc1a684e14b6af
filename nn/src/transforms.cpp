// Normalize, RandomCrop, RandomHorizontalFlip and Compose on (C, H, W).
#include "zerograd/nn/transforms.hpp"

#include <algorithm>
#include <random>
#include <string>

#include "zerograd/error.hpp"

namespace zg::nn::data {
namespace {

struct Chw {
  std::size_t c, h, w;
};

Chw chw(const Tensor<float>& x, const char* op) {
  if (x.dimension() != 3)
    throw ShapeError(std::string(op) + ": expected one image (C, H, W), got shape " + shape_str(x.shape()));
  return {x.shape()[0], x.shape()[1], x.shape()[2]};
}

}  // namespace

Normalize::Normalize(std::vector<float> mean, std::vector<float> std) : mean_(std::move(mean)), std_(std::move(std)) {
  if (mean_.size() != std_.size() || mean_.empty())
    throw ValueError("Normalize: " + std::to_string(mean_.size()) + " means and " + std::to_string(std_.size()) +
                     " standard deviations; give one of each per channel");
  for (std::size_t c = 0; c < std_.size(); ++c)
    if (!(std_[c] > 0))
      throw ValueError("Normalize: std " + std::to_string(std_[c]) + " of channel " + std::to_string(c) +
                       " is not positive");
}

Tensor<float> Normalize::operator()(const Tensor<float>& x, Generator&) const {
  const Chw s = chw(x, "Normalize");
  if (s.c != mean_.size())
    throw ShapeError("Normalize: an image of " + std::to_string(s.c) + " channels, shape " + shape_str(x.shape()) +
                     ", for " + std::to_string(mean_.size()) + " means and standard deviations");
  Tensor<float> out = Tensor<float>::from_shape(x.shape());
  const std::size_t plane = s.h * s.w;
  for (std::size_t c = 0; c < s.c; ++c)
    for (std::size_t i = c * plane; i < (c + 1) * plane; ++i) out.data()[i] = (x.data()[i] - mean_[c]) / std_[c];
  return out;
}

RandomCrop::RandomCrop(std::size_t size, std::size_t padding) : size_(size), padding_(padding) {
  if (size == 0) throw ValueError("RandomCrop: the crop size must be positive");
}

Tensor<float> RandomCrop::operator()(const Tensor<float>& x, Generator& gen) const {
  const Chw s = chw(x, "RandomCrop");
  const std::size_t ph = s.h + 2 * padding_, pw = s.w + 2 * padding_;
  if (size_ > ph || size_ > pw)
    throw ShapeError("RandomCrop: a " + std::to_string(size_) + "x" + std::to_string(size_) +
                     " crop of an image of shape " + shape_str(x.shape()) + " padded by " + std::to_string(padding_) +
                     " to " + std::to_string(ph) + "x" + std::to_string(pw));
  const std::size_t top = std::uniform_int_distribution<std::size_t>(0, ph - size_)(gen);
  const std::size_t left = std::uniform_int_distribution<std::size_t>(0, pw - size_)(gen);
  Tensor<float> out = xt::zeros<float>({s.c, size_, size_});
  // Output (i, j) is padded (top + i, left + j), i.e. input row top + i - padding.
  for (std::size_t c = 0; c < s.c; ++c)
    for (std::size_t i = 0; i < size_; ++i) {
      const std::size_t r = top + i;
      if (r < padding_ || r >= padding_ + s.h) continue;
      for (std::size_t j = 0; j < size_; ++j) {
        const std::size_t col = left + j;
        if (col >= padding_ && col < padding_ + s.w) out(c, i, j) = x(c, r - padding_, col - padding_);
      }
    }
  return out;
}

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  if (!(p >= 0 && p <= 1)) throw ValueError("RandomHorizontalFlip: probability " + std::to_string(p) + " is not in [0, 1]");
}

Tensor<float> RandomHorizontalFlip::operator()(const Tensor<float>& x, Generator& gen) const {
  const Chw s = chw(x, "RandomHorizontalFlip");
  if (!(std::uniform_real_distribution<double>(0.0, 1.0)(gen) < p_)) return x;
  Tensor<float> out = Tensor<float>::from_shape(x.shape());
  for (std::size_t row = 0; row < s.c * s.h; ++row)
    std::reverse_copy(x.data() + row * s.w, x.data() + (row + 1) * s.w, out.data() + row * s.w);
  return out;
}

Compose::Compose(std::vector<std::shared_ptr<const Transform>> transforms) : transforms_(std::move(transforms)) {
  for (std::size_t i = 0; i < transforms_.size(); ++i)
    if (!transforms_[i]) throw ValueError("Compose: transform " + std::to_string(i) + " is null");
}

Tensor<float> Compose::operator()(const Tensor<float>& x, Generator& gen) const {
  Tensor<float> y = x;
  for (const auto& t : transforms_) y = (*t)(y, gen);
  return y;
}

}  // namespace zg::nn::data
