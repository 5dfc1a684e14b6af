#pragma once
// Helpers shared by the tests.
#include <functional>
#include <map>
#include <random>
#include <vector>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include <zerograd/zerograd.hpp>

namespace zg::testing {

// Uniform values in [lo, hi) with a random sign if signed_ is set, so inputs
// stay away from 0 (kinks) when lo > 0.
inline Variable64 uniform(const Shape& shape, double lo, double hi, unsigned seed, bool signed_ = false) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  Tensor<double> t = Tensor<double>::from_shape(shape);
  for (auto& v : t) v = dist(gen) * (signed_ && gen() % 2 ? -1.0 : 1.0);
  return Variable64(std::move(t));
}

// A column vector (n, 1): braces alone are ambiguous for xtensor here.
template <class T = float>
Tensor<T> column(std::initializer_list<T> values) {
  Tensor<T> t = Tensor<T>::from_shape({values.size(), 1});
  std::copy(values.begin(), values.end(), t.begin());
  return t;
}

// 0, 1, 2, ... in the given shape.
template <class T = double>
Tensor<T> iota(const Shape& shape) {
  Tensor<T> t = Tensor<T>::from_shape(shape);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<T>(i);
  return t;
}

// got has this shape and, element by element, these values.
template <class T>
void check_values(const BasicVariable<T>& got, const Shape& shape, const std::vector<double>& want,
                  double eps = 1e-6) {
  REQUIRE(got.shape() == shape);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(static_cast<double>(got.data().data()[i]) == doctest::Approx(want[i]).epsilon(eps));
  }
}

inline std::string str(const GradcheckReport& r) {
  std::ostringstream out;
  out << r;
  return out.str();
}

// The exception's message, or "" if f did not throw E.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// Gradcheck cases registered by the name of the Function they exercise. One
// test (test_op_coverage.cpp) walks zg::differentiable_ops() and fails for any
// op without a case, or whose case never runs that op.
inline std::map<std::string, std::vector<std::function<void()>>>& gradcheck_cases() {
  static std::map<std::string, std::vector<std::function<void()>>> cases;
  return cases;
}
inline bool register_gradcheck_case(const char* op, void (*fn)()) {
  gradcheck_cases()[op].push_back(fn);
  return true;
}

}  // namespace zg::testing

#define ZG_CAT_(a, b) a##b
#define ZG_CAT(a, b) ZG_CAT_(a, b)
// ZG_GRADCHECK_CASE("Exp") { CHECK_GRADCHECK(...); ... }
#define ZG_GRADCHECK_CASE(op) ZG_GRADCHECK_CASE_(op, ZG_CAT(zg_gradcheck_case_, __LINE__))
#define ZG_GRADCHECK_CASE_(op, fn)                                                        \
  static void fn();                                                                       \
  [[maybe_unused]] static const bool ZG_CAT(fn, _registered) =                             \
      zg::testing::register_gradcheck_case(op, &fn);                                      \
  static void fn()

#define CHECK_GRADCHECK(...)                              \
  do {                                                    \
    auto zg_report_ = zg::gradcheck(__VA_ARGS__);         \
    INFO(zg::testing::str(zg_report_));                   \
    CHECK(zg_report_.passed);                             \
  } while (0)

#define CHECK_GRADGRADCHECK(...)                          \
  do {                                                    \
    auto zg_report_ = zg::gradgradcheck(__VA_ARGS__);     \
    INFO(zg::testing::str(zg_report_));                   \
    CHECK(zg_report_.passed);                             \
  } while (0)
