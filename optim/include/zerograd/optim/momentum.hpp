#pragma once
/// @file
/// The Momentum optimizer.
#include <zerograd/optim/optimizer.hpp>

namespace zg::optim {

/// Momentum SGD: v = m v - lr g; p += v. State: "v".
class Momentum : public Optimizer {
 public:
  explicit Momentum(Params params, float lr = 0.01f, float momentum = 0.9f);  ///< momentum is m
  float momentum() const { return momentum_; }  ///< m

 private:
  std::vector<std::string> buffer_names() const override { return {"v"}; }
  void update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float lambda) override;
  float momentum_;
};

}  // namespace zg::optim
