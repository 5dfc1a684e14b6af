#include "zerograd/nn/init.hpp"

#include <cmath>
#include <random>

#include "zerograd/random.hpp"

namespace zg::nn::init {

std::size_t fan_in(const Shape& s) {
  if (s.size() == 2) return s[0];
  if (s.size() == 4) return s[1] * s[2] * s[3];
  if (s.size() == 1) return s[0];
  throw ShapeError("init::fan_in: expected a 2-d (in, out) or 4-d (FN, C, KH, KW) weight, got " + shape_str(s));
}

template <class T>
void normal(BasicVariable<T>& w, double std) {
  if (!(std >= 0)) throw ValueError("init::normal: std must be >= 0, got " + std::to_string(std));
  std::normal_distribution<T> dist(T(0), static_cast<T>(std));
  for (auto& v : w.data()) v = dist(generator());
}

template <class T>
void uniform(BasicVariable<T>& w, double low, double high) {
  if (!(low <= high))
    throw ValueError("init::uniform: low " + std::to_string(low) + " > high " + std::to_string(high));
  std::uniform_real_distribution<T> dist(static_cast<T>(low), static_cast<T>(high));
  for (auto& v : w.data()) v = dist(generator());
}

template <class T>
void xavier_normal(BasicVariable<T>& w) { normal(w, std::sqrt(1.0 / fan_in(w.shape()))); }
template <class T>
void he_normal(BasicVariable<T>& w) { normal(w, std::sqrt(2.0 / fan_in(w.shape()))); }

template <class T>
void xavier_uniform(BasicVariable<T>& w) {
  const double b = std::sqrt(3.0 / fan_in(w.shape()));
  uniform(w, -b, b);
}
template <class T>
void he_uniform(BasicVariable<T>& w) {
  const double b = std::sqrt(6.0 / fan_in(w.shape()));
  uniform(w, -b, b);
}

template <class T>
void zeros(BasicVariable<T>& w) { constant(w, 0.0); }
template <class T>
void constant(BasicVariable<T>& w, double value) {
  w.data().fill(static_cast<T>(value));
}

double init_std(Scheme scheme, const Shape& s, double normal_std) {
  switch (scheme) {
    case Scheme::Xavier: return std::sqrt(1.0 / fan_in(s));
    case Scheme::He: return std::sqrt(2.0 / fan_in(s));
    case Scheme::Normal: break;
  }
  return normal_std;
}

#define ZG_INSTANTIATE(T)                                          \
  template void normal(BasicVariable<T>&, double);                 \
  template void uniform(BasicVariable<T>&, double, double);        \
  template void xavier_normal(BasicVariable<T>&);                  \
  template void xavier_uniform(BasicVariable<T>&);                 \
  template void he_normal(BasicVariable<T>&);                      \
  template void he_uniform(BasicVariable<T>&);                     \
  template void zeros(BasicVariable<T>&);                          \
  template void constant(BasicVariable<T>&, double);
ZG_INSTANTIATE(float)
ZG_INSTANTIATE(double)
#undef ZG_INSTANTIATE

}  // namespace zg::nn::init
