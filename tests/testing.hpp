#pragma once
// Helpers shared by the tests.
#include <functional>
#include <map>
#include <random>
#include <vector>
#include <sstream>
#include <string>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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

// What f did in a forked child: how far it raised the child's peak resident
// memory (so the parent's own peak does not hide it), and the message of the
// zg::Error it threw ("" when it returned; "not a zg::Error: ..." otherwise).
struct ChildRun {
  long peak_growth_kb = -1;
  std::string error;
};
inline ChildRun run_in_child(const std::function<void()>& f) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    rusage before{}, after{};
    ::getrusage(RUSAGE_SELF, &before);
    std::string error;
    try {
      f();
    } catch (const zg::Error& e) {
      error = e.what();
      if (error.empty()) error = "(empty message)";
    } catch (const std::exception& e) {
      error = std::string("not a zg::Error: ") + e.what();
    }
    ::getrusage(RUSAGE_SELF, &after);
    const std::string out = std::to_string(after.ru_maxrss - before.ru_maxrss) + "\n" + error;
    for (std::size_t done = 0; done < out.size();) {
      const ssize_t n = ::write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  ChildRun r;
  const std::size_t nl = got.find('\n');
  REQUIRE(nl != std::string::npos);
  r.peak_growth_kb = std::stol(got.substr(0, nl));
  r.error = got.substr(nl + 1);
  return r;
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
