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

void normal(Variable& w, double std) {
  if (!(std >= 0)) throw ValueError("init::normal: std must be >= 0, got " + std::to_string(std));
  std::normal_distribution<float> dist(0.0f, static_cast<float>(std));
  for (auto& v : w.data()) v = dist(generator());
}

void uniform(Variable& w, double low, double high) {
  if (!(low <= high))
    throw ValueError("init::uniform: low " + std::to_string(low) + " > high " + std::to_string(high));
  std::uniform_real_distribution<float> dist(static_cast<float>(low), static_cast<float>(high));
  for (auto& v : w.data()) v = dist(generator());
}

void xavier_normal(Variable& w) { normal(w, std::sqrt(1.0 / fan_in(w.shape()))); }
void he_normal(Variable& w) { normal(w, std::sqrt(2.0 / fan_in(w.shape()))); }

void xavier_uniform(Variable& w) {
  const double b = std::sqrt(3.0 / fan_in(w.shape()));
  uniform(w, -b, b);
}
void he_uniform(Variable& w) {
  const double b = std::sqrt(6.0 / fan_in(w.shape()));
  uniform(w, -b, b);
}

void zeros(Variable& w) { constant(w, 0.0); }
void constant(Variable& w, double value) { w.data().fill(static_cast<float>(value)); }

double init_std(Scheme scheme, const Shape& s, double normal_std) {
  switch (scheme) {
    case Scheme::Xavier: return std::sqrt(1.0 / fan_in(s));
    case Scheme::He: return std::sqrt(2.0 / fan_in(s));
    case Scheme::Normal: break;
  }
  return normal_std;
}

}  // namespace zg::nn::init
