#pragma once
/// @file
/// The RMSprop optimizer.
#include <zerograd/optim/optimizer.hpp>

namespace zg::optim {

/// RMSprop: h = decay h + (1 - decay) g^2; p -= lr g / (sqrt(h) + 1e-7). State: "h".
class RMSprop : public Optimizer {
 public:
  explicit RMSprop(Params params, float lr = 0.01f, float decay = 0.99f);  ///< decay of the running mean of g^2
  float decay() const { return decay_; }  ///< the decay

 private:
  std::vector<std::string> buffer_names() const override { return {"h"}; }
  void update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float lambda) override;
  float decay_;
};

}  // namespace zg::optim
