#include "zerograd/optim/nesterov.hpp"

#include "optim_common.hpp"

namespace zg::optim {

Nesterov::Nesterov(Params params, float lr, float momentum)
    : Optimizer("Nesterov", std::move(params), lr), momentum_(momentum) {
  check_unit("momentum", momentum);
}

// The book's order: p moves with the old v, then v is updated.
void Nesterov::update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float) {
  const float m = momentum_;
  float* w = p.data();
  float* v = s.buffers.at("v").data();
  const float* gs = g.data();
  detail::for_each_element(p.size(), [&](std::size_t k) {
    w[k] += m * m * v[k];            // p += m^2 v
    w[k] -= (1 + m) * lr * gs[k];    // p -= (1 + m) lr g
    v[k] = detail::flush(m * v[k] - lr * gs[k]);  // v = m v - lr g
  });
}

}  // namespace zg::optim
