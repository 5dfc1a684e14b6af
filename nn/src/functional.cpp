// Layer-level functional ops built from autograd ops: linear over the last
// axis or with flattening, inverted dropout, batch normalisation.
#include <cmath>
#include <numeric>
#include <random>

#include <xtensor/xmath.hpp>

#include "zerograd/nn/functional.hpp"

namespace zg::nn::functional {

template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& W, const Var<T>& b) {
  const Shape ws = W.shape();
  if (x.ndim() > 2 && ws.size() == 2 && x.shape().back() != ws[0]) {  // the book's Affine
    const Shape s = x.shape();
    const std::size_t rest = std::accumulate(s.begin() + 1, s.end(), std::size_t{1}, std::multiplies<>());
    return zg::linear(zg::reshape(x, {s[0], rest}), W, b);
  }
  return zg::linear(x, W, b);
}

template <class T>
Var<T> dropout(const Var<T>& x, double p, bool training, Generator& gen) {
  if (!(p >= 0 && p < 1)) throw ValueError("dropout: p must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0) return x;
  Tensor<T> mask = Tensor<T>::from_shape(x.data().shape());
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  for (auto& m : mask) m = u(gen) >= p ? scale : T(0);
  return x * Var<T>(std::move(mask));  // d dropout = mask (already scaled)
}

template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Var<T>& running_mean,
                  Var<T>& running_var, bool training, double momentum, double eps) {
  const Shape s = x.shape();
  if (s.size() != 2 && s.size() != 4)
    throw ShapeError("batch_norm: input must be (N, F) or (N, C, H, W), got " + shape_str(s));
  const std::size_t c = s[1];
  for (const Var<T>* p : {&gamma, &beta, static_cast<const Var<T>*>(&running_mean), static_cast<const Var<T>*>(&running_var)})
    if (p->shape() != Shape{c})
      throw ShapeError("batch_norm: input " + shape_str(s) + " has " + std::to_string(c) +
                       " features/channels but a parameter has shape " + shape_str(p->shape()));
  const Axes axes = s.size() == 2 ? Axes{0} : Axes{0, 2, 3};
  const Shape stat_shape = s.size() == 2 ? Shape{1, c} : Shape{1, c, 1, 1};
  const std::size_t count = x.size() / c;

  Var<T> xc, inv_std;
  if (training) {
    if (count < 2)
      throw ValueError("batch_norm: training needs more than one value per channel, input " + shape_str(s));
    Var<T> mu = zg::sum(x, axes, true) * (T(1) / T(count));
    xc = x - mu;
    Var<T> var = zg::sum(zg::square(xc), axes, true) * (T(1) / T(count));
    inv_std = zg::pow(var + static_cast<T>(eps), T(-0.5));
    // running = (1 - momentum) running + momentum batch (unbiased variance)
    const T m = static_cast<T>(momentum);
    const T unbias = static_cast<T>(double(count) / double(count - 1));
    Tensor<T>& rm = running_mean.data();
    Tensor<T>& rv = running_var.data();
    for (std::size_t i = 0; i < c; ++i) {
      rm.data()[i] = (1 - m) * rm.data()[i] + m * mu.data().data()[i];
      rv.data()[i] = (1 - m) * rv.data()[i] + m * var.data().data()[i] * unbias;
    }
  } else {
    xc = x - zg::reshape(running_mean.detach(), stat_shape);
    Tensor<T> inv = 1 / xt::sqrt(running_var.data() + static_cast<T>(eps));
    inv_std = Var<T>(std::move(inv));
    inv_std = zg::reshape(inv_std, stat_shape);
  }
  return xc * inv_std * zg::reshape(gamma, stat_shape) + zg::reshape(beta, stat_shape);
}

#define ZG_INSTANTIATE(T)                                                                          \
  template Var<T> linear(const Var<T>&, const Var<T>&, const Var<T>&);                             \
  template Var<T> dropout(const Var<T>&, double, bool, Generator&);                                \
  template Var<T> batch_norm(const Var<T>&, const Var<T>&, const Var<T>&, Var<T>&, Var<T>&, bool, \
                             double, double);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::functional
