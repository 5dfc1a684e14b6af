#include "zerograd/optim/adam.hpp"

#include <cmath>

#include "optim_common.hpp"

namespace zg::optim {

Adam::Adam(Params params, float lr, float beta1, float beta2) : Adam("Adam", std::move(params), lr, beta1, beta2) {}

Adam::Adam(std::string name, Params params, float lr, float beta1, float beta2)
    : Optimizer(std::move(name), std::move(params), lr), beta1_(beta1), beta2_(beta2) {
  check_unit("beta1", beta1);
  check_unit("beta2", beta2);
}

void Adam::update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float) {
  const double t = double(s.t);
  // lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)
  const float lr_t = float(lr * std::sqrt(1 - std::pow(double(beta2_), t)) / (1 - std::pow(double(beta1_), t)));
  float* w = p.data();
  float* m = s.buffers.at("m").data();
  float* v = s.buffers.at("v").data();
  const float* gs = g.data();
  detail::for_each_element(p.size(), [&](std::size_t k) {
    m[k] += (1 - beta1_) * (gs[k] - m[k]);          // m += (1 - b1)(g - m)
    v[k] += (1 - beta2_) * (gs[k] * gs[k] - v[k]);  // v += (1 - b2)(g^2 - v)
    w[k] -= lr_t * m[k] / (std::sqrt(v[k]) + 1e-7f);  // p -= lr_t m / (sqrt(v) + 1e-7)
  });
}

}  // namespace zg::optim
