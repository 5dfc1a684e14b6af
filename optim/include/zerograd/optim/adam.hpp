#pragma once
/// @file
/// The Adam optimizer.
#include <zerograd/optim/optimizer.hpp>

namespace zg::optim {

/// Adam as in the book: t += 1; lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);
/// m += (1 - b1)(g - m); v += (1 - b2)(g^2 - v); p -= lr_t m / (sqrt(v) + 1e-7).
/// State: "m", "v". t counts this parameter's updates: the book's one counter
/// per optimizer whenever every parameter is updated at every step.
class Adam : public Optimizer {
 public:
  /// The book's and PyTorch's defaults; ValueError unless 0 <= beta < 1.
  explicit Adam(Params params, float lr = 0.001f, float beta1 = 0.9f, float beta2 = 0.999f);
  float beta1() const { return beta1_; }  ///< decay rate of m
  float beta2() const { return beta2_; }  ///< decay rate of v

 protected:
  Adam(std::string name, Params params, float lr, float beta1, float beta2);  ///< for AdamW: the same with another name
  std::vector<std::string> buffer_names() const override { return {"m", "v"}; }  ///< "m" and "v"
  /// One Adam step on p.
  void update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float lambda) override;

 private:
  float beta1_, beta2_;
};

}  // namespace zg::optim
