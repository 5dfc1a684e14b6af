#include "zerograd/optim/sgd.hpp"

#include "optim_common.hpp"

namespace zg::optim {

SGD::SGD(Params params, float lr) : Optimizer("SGD", std::move(params), lr) {}

void SGD::update(Tensor<float>& p, const Tensor<float>& g, ParamState&, float lr, float) {
  float* w = p.data();
  const float* gs = g.data();
  detail::for_each_element(p.size(), [&](std::size_t k) { w[k] -= lr * gs[k]; });  // p -= lr g
}

}  // namespace zg::optim
