#include "zerograd/optim/adamw.hpp"

namespace zg::optim {

AdamW::AdamW(Params params, float lr, float beta1, float beta2, float weight_decay)
    : Adam("AdamW", std::move(params), lr, beta1, beta2) {
  set_weight_decay(weight_decay);
}

void AdamW::update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float lambda) {
  const float keep = 1 - lr * lambda;
  float* w = p.data();
  for (std::size_t k = 0; k < p.size(); ++k) w[k] *= keep;  // p *= 1 - lr lambda
  Adam::update(p, g, s, lr, 0);
}

}  // namespace zg::optim
