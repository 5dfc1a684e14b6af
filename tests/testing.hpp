#pragma once
// Helpers shared by the tests.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
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

// Element (i, j) of op(m) for a 2-D m, op transposing when trans is set.
template <class T>
T element(const Tensor<T>& m, bool trans, std::size_t i, std::size_t j) {
  return trans ? m(j, i) : m(i, j);
}

// Note [BLAS tolerance]: BLAS promises no summation order, and OpenBLAS's
// kernels (Haswell, Zen, SkylakeX, ...) and its blocking differ in the last
// bits. What holds for any order is the bound on a K-term dot product in
// precision u: |computed - exact| <= K u sum_k |a_ik b_kj| (to first order).
// So a BLAS-backed result is checked against the exact product with a
// tolerance from the shapes, 2 (K + 1) u |A||B|, never bit for bit.
// Returns how many elements of y are outside it (y = op(a) op(b) + bias).
template <class T>
std::size_t product_errors(const Tensor<T>& y, const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb,
                           const Tensor<T>* bias = nullptr) {
  const std::size_t M = y.shape()[0], N = y.shape()[1], K = a.shape()[ta ? 0 : 1];
  const long double u = std::numeric_limits<T>::epsilon();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < M; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      long double ref = bias ? (*bias)(j) : 0, mag = std::abs(ref);
      for (std::size_t k = 0; k < K; ++k) {
        const long double p = static_cast<long double>(element(a, ta, i, k)) * element(b, tb, k, j);
        ref += p;
        mag += std::abs(p);
      }
      if (!(std::abs(y(i, j) - ref) <= 2 * (K + 1) * u * mag)) ++bad;  // a NaN is bad too
    }
  return bad;
}

template <class T>
void check_product(const Tensor<T>& y, const Tensor<T>& a, const Tensor<T>& b, bool ta, bool tb,
                   const Tensor<T>* bias = nullptr) {
  CHECK(product_errors(y, a, b, ta, tb, bias) == 0);
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

// An empty folder of this test process's own under the system's temp
// directory, "zerograd_<name>_<pid>" (emptied if a case left files there).
inline std::filesystem::path empty_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("zerograd_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// What a shell command did, as a user running an example sees it: the exit
// status (128 + the signal when one ended it), standard output and error.
struct ProgramRun {
  int status = -1;
  std::string out, err;
};
inline ProgramRun run_program(const std::string& command) {
  const auto dir = empty_dir("program_log");
  const int raw = std::system((command + " >" + (dir / "out").string() + " 2>" + (dir / "err").string()).c_str());
  ProgramRun r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  r.out = read_text(dir / "out");
  r.err = read_text(dir / "err");
  return r;
}

// Every entry of a checkpoint (.npz) by name.
inline std::map<std::string, Tensor<float>> checkpoint_entries(const std::filesystem::path& npz) {
  nn::NpzReader zip(npz.string());
  std::map<std::string, Tensor<float>> out;
  for (const auto& m : zip.members()) out[m.name] = zip.read_float(m, zip.header(m));
  return out;
}

// The checkpoint at got holds the entries of the one at want, bit for bit:
// what a resumed run must end with.
inline void check_same_checkpoint(const std::filesystem::path& got, const std::filesystem::path& want) {
  const auto a = checkpoint_entries(got), b = checkpoint_entries(want);
  REQUIRE(a.size() == b.size());
  for (const auto& [key, value] : b) {
    const std::string name = key;  // a lambda cannot capture a binding in C++17
    CAPTURE(name);
    REQUIRE(a.count(name));
    CHECK(a.at(name) == value);
  }
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

// Gradcheck cases registered by the name of the Function they exercise, one
// per Function. Each is its own TEST_CASE ("Tanh: gradcheck", so -tc="Tanh*"
// runs one op) that fails if it never runs its Function; test_op_coverage.cpp
// fails for a registered op (ZG_REGISTER_OP) without a case, or a case of an
// op nobody registered.
inline std::map<std::string, std::vector<std::function<void()>>>& gradcheck_cases() {
  static std::map<std::string, std::vector<std::function<void()>>> cases;
  return cases;
}
inline bool register_gradcheck_case(const char* op, void (*fn)()) {
  gradcheck_cases()[op].push_back(fn);
  return true;
}

// CHECK_GRADGRADCHECKs run so far: every case must run one, so every op's
// create_graph backward is differentiated and checked again.
inline int& second_order_checks() {
  static int n = 0;
  return n;
}

// Runs one case and checks that it ran the Function it is registered for,
// that this Function states its rule in words for every input (the graph
// player shows it), and a second-order check.
inline void run_gradcheck_case(const std::string& op, void (*fn)()) {
  std::set<std::string> ran;
  std::set<std::string> wordless;  // "Name input i" without a rule
  const int checks = second_order_checks();
  {
    ForwardObserverGuard<double> watch([&](const ForwardStep<double>& s) {
      const std::string name = s.function.name();
      ran.insert(name);
      if (name != op) return;
      for (std::size_t i = 0; i < s.inputs.size(); ++i)
        if (s.function.rule(i).empty()) wordless.insert(name + " input " + std::to_string(i));
    });
    fn();
  }
  CHECK_MESSAGE(ran.count(op) == 1, "the gradcheck case for " << op << " never ran it");
  for (const std::string& w : wordless) CHECK_MESSAGE(false, w << " has no rule(i) in words");
  CHECK_MESSAGE(second_order_checks() > checks,
                "the gradcheck case for " << op << " has no CHECK_GRADGRADCHECK of its create_graph backward");
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
  TEST_CASE(op ": gradcheck") { zg::testing::run_gradcheck_case(op, &fn); }               \
  static void fn()

#define CHECK_GRADCHECK(...)                              \
  do {                                                    \
    auto zg_report_ = zg::gradcheck(__VA_ARGS__);         \
    INFO(zg::testing::str(zg_report_));                   \
    CHECK(zg_report_.passed);                             \
  } while (0)

#define CHECK_GRADGRADCHECK(...)                          \
  do {                                                    \
    ++zg::testing::second_order_checks();                 \
    auto zg_report_ = zg::gradgradcheck(__VA_ARGS__);     \
    INFO(zg::testing::str(zg_report_));                   \
    CHECK(zg_report_.passed);                             \
  } while (0)
