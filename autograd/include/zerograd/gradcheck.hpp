#pragma once
// Gradient checking: analytic backward against central differences, in double.
#include <cstddef>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "zerograd/variable.hpp"

namespace zg {

struct GradcheckOptions {
  double eps = 1e-6;   // central-difference step
  double atol = 1e-6;  // an element passes if |a - n| <= atol + rtol * |n|
  double rtol = 1e-4;
  unsigned seed = 0;   // seeds the random weights that mix several output elements
  // Also fail if every analytic and numeric gradient is (near) zero: such a
  // check proves nothing.
  bool require_nonzero = true;
  // Check at most this many elements of each input, evenly spaced (0: all).
  // For large inputs, where every element costs two more forward passes.
  std::size_t max_elements_per_input = 0;
};

struct GradcheckReport {
  bool passed = true;
  std::string reason;          // why it failed, empty when passed
  std::size_t worst_input = 0; // index into inputs
  std::string worst_name;      // that input's name, when it has one
  Shape worst_position;        // multi-index into that input
  double analytic = 0, numeric = 0;
  double max_abs_error = 0, max_rel_error = 0;
  std::size_t elements_checked = 0;
  explicit operator bool() const { return passed; }
};
std::ostream& operator<<(std::ostream& out, const GradcheckReport& report);

using Function64 = std::function<std::vector<Variable64>(const std::vector<Variable64>&)>;
using ScalarFunction64 = std::function<Variable64(const std::vector<Variable64>&)>;

// Compares d L / d inputs from backward with central differences, where
// L = sum_k sum(w_k * y_k) over f's outputs y_k with fixed random weights w_k
// (so a backward that ignores its upstream gradient is caught). Inputs are
// copied; the caller's Variables are not touched.
GradcheckReport gradcheck(const Function64& f, const std::vector<Variable64>& inputs,
                          const GradcheckOptions& options = {});
GradcheckReport gradcheck(const ScalarFunction64& f, const std::vector<Variable64>& inputs,
                          const GradcheckOptions& options = {});
// Float inputs are converted to double first.
GradcheckReport gradcheck(const ScalarFunction64& f, const std::vector<Variable>& inputs,
                          const GradcheckOptions& options = {});

// The same check on leaves that f reads by itself (a module's parameters,
// Variables captured by a lambda): each element is perturbed in place and
// put back, and each leaf's .grad is left as it was. f must be
// deterministic: the same leaves give the same outputs.
GradcheckReport gradcheck_leaves(const std::function<std::vector<Variable64>()>& f,
                                 const std::vector<Variable64>& leaves, const GradcheckOptions& options = {});

// Second order: checks the gradient of f (recorded with create_graph) the
// same way, i.e. the backward of f's backward.
GradcheckReport gradgradcheck(const ScalarFunction64& f, const std::vector<Variable64>& inputs,
                              const GradcheckOptions& options = {});

// The book's numerical gradient (chapter 4): central differences of a scalar
// loss with respect to x's data, perturbing x in place and restoring it.
template <class T>
Tensor<T> numerical_gradient(const std::function<T()>& loss, BasicVariable<T>& x, double h = 1e-4);

}  // namespace zg
