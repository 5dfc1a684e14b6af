#pragma once
/// @file
/// The AdaGrad optimizer.
#include <zerograd/optim/optimizer.hpp>

namespace zg::optim {

/// AdaGrad: h += g^2; p -= lr g / (sqrt(h) + 1e-7). State: "h".
class AdaGrad : public Optimizer {
 public:
  explicit AdaGrad(Params params, float lr = 0.01f);  ///< the learning rate lr

 private:
  std::vector<std::string> buffer_names() const override { return {"h"}; }
  void update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float lambda) override;
};

}  // namespace zg::optim
