#include "zerograd/optim/momentum.hpp"

#include "optim_common.hpp"

namespace zg::optim {

Momentum::Momentum(Params params, float lr, float momentum)
    : Optimizer("Momentum", std::move(params), lr), momentum_(momentum) {
  check_unit("momentum", momentum);
}

void Momentum::update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float) {
  float* w = p.data();
  float* v = s.buffers.at("v").data();
  const float* gs = g.data();
  detail::for_each_element(p.size(), [&](std::size_t k) {
    v[k] = detail::flush(momentum_ * v[k] - lr * gs[k]);  // v = m v - lr g
    w[k] += v[k];                          // p += v
  });
}

}  // namespace zg::optim
