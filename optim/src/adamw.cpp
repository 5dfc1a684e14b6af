#include "zerograd/optim/adamw.hpp"

#include "optim_common.hpp"

namespace zg::optim {

AdamW::AdamW(Params params, float lr, float beta1, float beta2, float weight_decay)
    : Adam("AdamW", std::move(params), lr, beta1, beta2) {
  set_weight_decay(weight_decay);
}

void AdamW::update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float lambda) {
  const float keep = 1 - lr * lambda;
  float* w = p.data();
  detail::for_each_element(p.size(), [&](std::size_t k) { w[k] *= keep; });  // p *= 1 - lr lambda
  Adam::update(p, g, s, lr, 0);
}

}  // namespace zg::optim
