#include "zerograd/optim/adagrad.hpp"

#include <cmath>

#include "optim_common.hpp"

namespace zg::optim {

AdaGrad::AdaGrad(Params params, float lr) : Optimizer("AdaGrad", std::move(params), lr) {}

void AdaGrad::update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float) {
  float* w = p.data();
  float* h = s.buffers.at("h").data();
  const float* gs = g.data();
  detail::for_each_element(p.size(), [&](std::size_t k) {
    h[k] = detail::flush(h[k] + gs[k] * gs[k]);       // h += g^2
    w[k] -= lr * gs[k] / (std::sqrt(h[k]) + 1e-7f);    // p -= lr g / (sqrt(h) + 1e-7)
  });
}

}  // namespace zg::optim
