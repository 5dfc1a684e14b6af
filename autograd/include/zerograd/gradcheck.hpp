#pragma once
/// @file
/// Gradient checking: analytic backward against central differences, in double.
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "zerograd/variable.hpp"

namespace zg {

/// How gradcheck compares: the step, the tolerances and what it samples.
struct GradcheckOptions {
  double eps = 1e-6;   ///< central-difference step
  double atol = 1e-6;  ///< an element passes if |a - n| <= atol + rtol * |n|
  double rtol = 1e-4;  ///< relative tolerance, see atol
  unsigned seed = 0;   ///< seeds the random weights that mix several output elements
  /// Also fail if every analytic and numeric gradient is (near) zero: such a
  /// check proves nothing.
  bool require_nonzero = true;
  /// Check at most this many elements of each input, evenly spaced (0: all).
  /// For large inputs, where every element costs two more forward passes.
  std::size_t max_elements_per_input = 0;
};

/// What gradcheck found: pass or fail, why, and the worst element. Prints as
/// one line; converts to bool (passed).
struct GradcheckReport {
  bool passed = true;  ///< every checked element within tolerance
  std::string reason;          ///< why it failed, empty when passed
  std::size_t worst_input = 0; ///< index into inputs
  std::string worst_name;      ///< that input's name, when it has one
  Shape worst_position;        ///< multi-index into that input
  ///@{
  /// The worst element's gradient from backward (analytic) and from central
  /// differences (numeric).
  double analytic = 0, numeric = 0;
  ///@}
  ///@{
  /// The largest absolute and relative differences over every checked element.
  double max_abs_error = 0, max_rel_error = 0;
  ///@}
  std::size_t elements_checked = 0;  ///< input elements perturbed
  explicit operator bool() const { return passed; }  ///< passed
};
/// "gradcheck passed: ..." or why it failed, on one line.
std::ostream& operator<<(std::ostream& out, const GradcheckReport& report);

/// A function of float64 Variables with several outputs.
using Function64 = std::function<std::vector<Variable64>(const std::vector<Variable64>&)>;
/// A function of float64 Variables with one output (of any shape).
using ScalarFunction64 = std::function<Variable64(const std::vector<Variable64>&)>;

/// Compares d L / d inputs from backward with central differences, where
/// L = sum_k sum(w_k * y_k) over f's outputs y_k with fixed random weights w_k
/// (so a backward that ignores its upstream gradient is caught). Inputs are
/// copied; the caller's Variables are not touched.
GradcheckReport gradcheck(const Function64& f, const std::vector<Variable64>& inputs,
                          const GradcheckOptions& options = {});
/// The same for a function with one output.
GradcheckReport gradcheck(const ScalarFunction64& f, const std::vector<Variable64>& inputs,
                          const GradcheckOptions& options = {});
/// Float inputs are converted to double first.
GradcheckReport gradcheck(const ScalarFunction64& f, const std::vector<Variable>& inputs,
                          const GradcheckOptions& options = {});

/// The same check on leaves that f reads by itself (a module's parameters,
/// Variables captured by a lambda): each element is perturbed in place and
/// put back, and each leaf's .grad is left as it was. f must be
/// deterministic: the same leaves give the same outputs.
GradcheckReport gradcheck_leaves(const std::function<std::vector<Variable64>()>& f,
                                 const std::vector<Variable64>& leaves, const GradcheckOptions& options = {});

/// Second order: checks the gradient of f (recorded with create_graph) the
/// same way: the backward of f's backward.
GradcheckReport gradgradcheck(const ScalarFunction64& f, const std::vector<Variable64>& inputs,
                              const GradcheckOptions& options = {});

/// The book's numerical gradient (chapter 4): central differences of a scalar
/// loss with respect to x's data, perturbing x in place and restoring it.
template <class T>
Tensor<T> numerical_gradient(const std::function<T()>& loss, BasicVariable<T>& x, double h = 1e-4);

}  // namespace zg
