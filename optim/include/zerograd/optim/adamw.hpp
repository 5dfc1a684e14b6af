#pragma once
/// @file
/// The AdamW optimizer (Adam with decoupled weight decay).
#include <zerograd/optim/adam.hpp>

namespace zg::optim {

/// Adam with decoupled weight decay (Loshchilov & Hutter, PyTorch's AdamW):
/// p *= 1 - lr lambda, then the Adam update with the gradient alone. Which
/// parameters decay follows the decay predicate and groups, as for the book's
/// weight decay (by default names ending in "weight" or "W").
class AdamW : public Adam {
 public:
  /// PyTorch's defaults; weight_decay is lambda.
  explicit AdamW(Params params, float lr = 0.001f, float beta1 = 0.9f, float beta2 = 0.999f,
                 float weight_decay = 0.01f);

 private:
  bool decoupled_decay() const override { return true; }
  void update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float lambda) override;
};

}  // namespace zg::optim
