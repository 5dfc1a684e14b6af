#pragma once
// Comparing with the PyTorch values of tests/golden/issue18_golden.hpp: the
// inputs are built by the same closed forms as in make_issue18_golden.py.
#include <cmath>
#include <functional>
#include <vector>

#include "testing.hpp"

namespace golden18 {

// f(i) at each flat index i, in the given shape (the script's ramp()).
inline zg::Variable64 ramp(const zg::Shape& shape, const std::function<double(double)>& f) {
  zg::Tensor<double> t = zg::Tensor<double>::from_shape(shape);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = f(double(i));
  return zg::Variable64(std::move(t));
}

// got equals want element by element to 1e-10 (relative to max(1, |want|)).
inline void check_close(const zg::Variable64& got, const std::vector<double>& want, double tol = 1e-10) {
  REQUIRE(got.defined());
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    const double g = got.data().data()[i];
    CHECK(std::abs(g - want[i]) <= tol * std::max(1.0, std::abs(want[i])));
  }
}

// y = f(inputs) equals value, and the gradients of sum(y * cos(i)) (of y
// itself for a 0-d y) with respect to each input equal grads.
inline void check_against(const std::function<zg::Variable64(const std::vector<zg::Variable64>&)>& f,
                          const std::vector<zg::Variable64>& inputs, const std::vector<double>& value,
                          const std::vector<std::vector<double>>& grads) {
  std::vector<zg::Variable64> xs;
  for (const auto& x : inputs) xs.push_back(zg::Variable64(x.data()).requires_grad_());
  zg::Variable64 y = f(xs);
  check_close(y, value);
  zg::Variable64 loss = y.ndim() == 0 ? y : zg::sum(y * ramp(y.shape(), [](double i) { return std::cos(i); }));
  loss.backward();
  for (std::size_t k = 0; k < grads.size(); ++k) {
    CAPTURE(k);
    check_close(xs[k].grad(), grads[k]);
  }
}

}  // namespace golden18
