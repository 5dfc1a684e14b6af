#include "zerograd/factory.hpp"

#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <sstream>

namespace zg {
namespace {

template <class T>
Var<T> leaf(Tensor<T> t, const FactoryOptions& o) {
  Var<T> v(std::move(t), o.name);
  if (o.requires_grad) v.requires_grad_();
  return v;
}

std::size_t count(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>());
}

}  // namespace

template <class T>
Var<T> tensor(const std::vector<T>& values, const Shape& shape, const FactoryOptions& options) {
  if (values.size() != count(shape))
    throw ShapeError("tensor: " + std::to_string(values.size()) + " values do not fill shape " + shape_str(shape) +
                     " (" + std::to_string(count(shape)) + " elements)");
  Tensor<T> t = Tensor<T>::from_shape(shape);
  std::copy(values.begin(), values.end(), t.begin());
  return leaf(std::move(t), options);
}

template <class T>
Var<T> full(const Shape& shape, Number<T> value, const FactoryOptions& options) {
  Tensor<T> t = Tensor<T>::from_shape(shape);
  t.fill(value);
  return leaf(std::move(t), options);
}

template <class T>
Var<T> zeros(const Shape& shape, const FactoryOptions& options) {
  return zg::full<T>(shape, T(0), options);
}

template <class T>
Var<T> ones(const Shape& shape, const FactoryOptions& options) {
  return zg::full<T>(shape, T(1), options);
}

template <class T>
Var<T> arange(Number<T> start, Number<T> stop, Number<T> step, const FactoryOptions& options) {
  const double span = double(stop) - double(start);
  if (step == T(0) || !std::isfinite(double(start)) || !std::isfinite(double(stop)) ||
      (span != 0 && (span > 0) != (step > 0)))
    throw ValueError("arange: step " + number_str(step) + " cannot go from " + number_str(start) + " to " + number_str(stop));
  const std::size_t n = static_cast<std::size_t>(std::ceil(span / double(step)));
  Tensor<T> t = Tensor<T>::from_shape({n});
  for (std::size_t i = 0; i < n; ++i) t(i) = static_cast<T>(double(start) + double(i) * double(step));
  return leaf(std::move(t), options);
}

template <class T>
Var<T> linspace(Number<T> start, Number<T> end, std::size_t steps, const FactoryOptions& options) {
  if (!std::isfinite(double(start)) || !std::isfinite(double(end)))
    throw ValueError("linspace: start and end must be finite, got " + number_str(start) + " and " + number_str(end));
  Tensor<T> t = Tensor<T>::from_shape({steps});
  const double step = steps > 1 ? (double(end) - double(start)) / double(steps - 1) : 0;
  // the first half counts up from start, the second down from end, so both ends are exact
  for (std::size_t i = 0; i < steps; ++i)
    t(i) = static_cast<T>(i < steps / 2 ? double(start) + double(i) * step : double(end) - double(steps - 1 - i) * step);
  if (steps == 1) t(0) = start;
  return leaf(std::move(t), options);
}

// A leaf of the shape, each value drawn from dist in row-major order.
template <class T, class Dist>
Var<T> drawn(const Shape& shape, const FactoryOptions& options, Generator& gen, Dist dist) {
  Tensor<T> t = Tensor<T>::from_shape(shape);
  for (auto& v : t) v = dist(gen);
  return leaf(std::move(t), options);
}

template <class T>
Var<T> randn(const Shape& shape, const FactoryOptions& options, Generator& gen) {
  return drawn<T>(shape, options, gen, std::normal_distribution<T>(T(0), T(1)));
}

template <class T>
Var<T> rand(const Shape& shape, const FactoryOptions& options, Generator& gen) {
  return drawn<T>(shape, options, gen, std::uniform_real_distribution<T>(T(0), T(1)));
}

#define ZG_INSTANTIATE(T)                                                                 \
  template Var<T> tensor(const std::vector<T>&, const Shape&, const FactoryOptions&);    \
  template Var<T> zeros<T>(const Shape&, const FactoryOptions&);                         \
  template Var<T> ones<T>(const Shape&, const FactoryOptions&);                          \
  template Var<T> full<T>(const Shape&, T, const FactoryOptions&);                       \
  template Var<T> arange<T>(T, T, T, const FactoryOptions&);                             \
  template Var<T> linspace<T>(T, T, std::size_t, const FactoryOptions&);                 \
  template Var<T> randn<T>(const Shape&, const FactoryOptions&, Generator&);             \
  template Var<T> rand<T>(const Shape&, const FactoryOptions&, Generator&);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg
