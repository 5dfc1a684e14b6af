#include "zerograd/optim/rmsprop.hpp"

#include <cmath>

#include "optim_common.hpp"

namespace zg::optim {

RMSprop::RMSprop(Params params, float lr, float decay) : Optimizer("RMSprop", std::move(params), lr), decay_(decay) {
  check_unit("decay", decay);
}

void RMSprop::update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float) {
  float* w = p.data();
  float* h = s.buffers.at("h").data();
  const float* gs = g.data();
  detail::for_each_element(p.size(), [&](std::size_t k) {
    h[k] = detail::flush(decay_ * h[k] + (1 - decay_) * gs[k] * gs[k]);  // h = decay h + (1 - decay) g^2
    w[k] -= lr * gs[k] / (std::sqrt(h[k]) + 1e-7f);       // p -= lr g / (sqrt(h) + 1e-7)
  });
}

}  // namespace zg::optim
