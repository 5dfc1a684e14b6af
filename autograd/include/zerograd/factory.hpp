#pragma once
/// @file
/// Factories for new leaf Variables, as torch:: has them: tensor, zeros,
/// ones, full, arange, linspace, randn, rand. The element type is a template
/// argument (float by default, as in torch), never deduced from a number:
/// zg::zeros({2, 3}) and zg::arange(0, 10) are Variables,
/// zg::arange<double>(0, 1, 0.1) a Variable64; tensor() takes it from the values.
/// A column, which nested braces cannot spell without ambiguity, is
/// @code
///   zg::tensor({1., 2., 3.}, {3, 1})     // a 3x1 Variable64
/// @endcode
#include <cstddef>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "zerograd/random.hpp"
#include "zerograd/variable.hpp"

namespace zg {

namespace detail {
template <class T>
struct NotDeduced { using type = T; };
}  // namespace detail
/// A number argument of type T that does not decide T: zg::full<double>({2}, 1)
/// works, and zg::full({2}, 1.0) is still a float Variable.
template <class T>
using Number = typename detail::NotDeduced<T>::type;

/// What a factory makes besides the values: zg::zeros({3}, {true}) asks for
/// a gradient; {true, "w"} also names it.
struct FactoryOptions {
  /// Implicit, so that {true} and {true, "w"} read as options.
  FactoryOptions(bool requires_grad = false, std::string name = {})
      : requires_grad(requires_grad), name(std::move(name)) {}
  bool requires_grad;  ///< a leaf that backward fills .grad() of
  std::string name;  ///< the Variable's name
};

/// values laid out row-major in shape; the count must equal the shape's size.
template <class T>
Var<T> tensor(const std::vector<T>& values, const Shape& shape, const FactoryOptions& options = {});
/// The same from a braced list: zg::tensor({1., 2., 3.}, {3, 1}).
template <class T>
Var<T> tensor(std::initializer_list<T> values, const Shape& shape, const FactoryOptions& options = {}) {
  return zg::tensor(std::vector<T>(values), shape, options);
}

template <class T = float> Var<T> zeros(const Shape& shape, const FactoryOptions& options = {});  ///< zeros of shape
template <class T = float> Var<T> ones(const Shape& shape, const FactoryOptions& options = {});  ///< ones of shape
/// value everywhere in shape.
template <class T = float> Var<T> full(const Shape& shape, Number<T> value, const FactoryOptions& options = {});

/// start, start + step, ... while before stop (PyTorch's arange: the count is
/// ceil((stop - start) / step), element i is start + i step). step must not
/// be 0 and must point from start towards stop (or start == stop: empty).
template <class T = float>
Var<T> arange(Number<T> start, Number<T> stop, Number<T> step = 1, const FactoryOptions& options = {});
/// steps values from start to end inclusive, evenly spaced (steps 1: start).
template <class T = float>
Var<T> linspace(Number<T> start, Number<T> end, std::size_t steps, const FactoryOptions& options = {});

///@{
/// Standard normal (randn) and uniform [0, 1) (rand) values drawn from gen (by
/// default the library's generator, so zg::manual_seed makes them repeat).
template <class T = float>
Var<T> randn(const Shape& shape, const FactoryOptions& options = {}, Generator& gen = generator());
template <class T = float>
Var<T> rand(const Shape& shape, const FactoryOptions& options = {}, Generator& gen = generator());
///@}

}  // namespace zg
