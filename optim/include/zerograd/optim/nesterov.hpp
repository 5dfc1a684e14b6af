#pragma once
/// @file
/// The Nesterov optimizer.
#include <zerograd/optim/optimizer.hpp>

namespace zg::optim {

/// Nesterov's accelerated gradient, in the book's form that needs the gradient
/// at p only: p += m^2 v; p -= (1 + m) lr g; v = m v - lr g. State: "v".
class Nesterov : public Optimizer {
 public:
  explicit Nesterov(Params params, float lr = 0.01f, float momentum = 0.9f);  ///< momentum is m
  float momentum() const { return momentum_; }  ///< m

 private:
  std::vector<std::string> buffer_names() const override { return {"v"}; }
  void update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float lambda) override;
  float momentum_;
};

}  // namespace zg::optim
