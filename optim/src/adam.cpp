#include "zerograd/optim/adam.hpp"

#include <cmath>

#include "optim_common.hpp"

namespace zg::optim {
namespace {

// Separate arrays (restrict), so the loop is vectorized, square root included.
void adam_step(float* __restrict w, float* __restrict m, float* __restrict v, const float* __restrict g,
                std::size_t n, float b1, float b2, float lr_t) {
  for (std::size_t k = 0; k < n; ++k) {
    m[k] = detail::flush(m[k] + (1 - b1) * (g[k] - m[k]));         // m += (1 - b1)(g - m)
    v[k] = detail::flush(v[k] + (1 - b2) * (g[k] * g[k] - v[k]));  // v += (1 - b2)(g^2 - v)
    w[k] -= lr_t * m[k] / (std::sqrt(v[k]) + 1e-7f);               // p -= lr_t m / (sqrt(v) + 1e-7)
  }
}

}  // namespace

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
  const float b1 = beta1_, b2 = beta2_;
  zg::detail::parallel_for(p.size(), zg::detail::kElementGrain, [&](std::size_t b, std::size_t e) {
    adam_step(w + b, m + b, v + b, gs + b, e - b, b1, b2, lr_t);
  });
}

}  // namespace zg::optim
