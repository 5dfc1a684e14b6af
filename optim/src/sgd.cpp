#include "zerograd/optim/sgd.hpp"

namespace zg::optim {

SGD::SGD(Params params, float lr) : Optimizer("SGD", std::move(params), lr) {}

void SGD::update(Tensor<float>& p, const Tensor<float>& g, ParamState&, float lr, float) {
  float* w = p.data();
  const float* gs = g.data();
  for (std::size_t k = 0; k < p.size(); ++k) w[k] -= lr * gs[k];  // p -= lr g
}

}  // namespace zg::optim
