#pragma once
/// @file
/// The SGD optimizer.
#include <zerograd/optim/optimizer.hpp>

namespace zg::optim {

/// Stochastic gradient descent: p -= lr g.
class SGD : public Optimizer {
 public:
  explicit SGD(Params params, float lr = 0.01f);  ///< the learning rate lr

 private:
  std::vector<std::string> buffer_names() const override { return {}; }
  void update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float lambda) override;
};

}  // namespace zg::optim
