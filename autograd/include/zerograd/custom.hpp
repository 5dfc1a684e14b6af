#pragma once
/// @file
/// User-defined differentiable operations, written once for float and double.
///
/// @code
///   struct Softplus {
///     std::string name() const { return "Softplus"; }
///     template <class T>
///     zg::Outputs<T> forward(const zg::TensorList<T>& x) const {  // stable form
///       return xt::maximum(x[0], T(0)) + xt::log1p(xt::exp(-xt::abs(x[0])));
///     }
///     // d softplus(x) = sigmoid(x) dx
///     template <class T>
///     zg::Variables<T> backward(const zg::Function<T>& self, const zg::Variables<T>& gy) const {
///       return {gy[0] * zg::sigmoid(self.input(0))};
///     }
///   };
///   auto y = zg::call(Softplus{}, x);  // x a Variable or a Variable64
/// @endcode
///
/// forward works on raw arrays; backward gets the Function (for its inputs
/// and outputs) and the upstream gradients and returns one gradient per input
/// (an empty Variable where none is needed). When backward uses Variable ops,
/// create_graph and higher-order derivatives work for the new op too.
/// self.input(i) is always there (custom ops save their inputs);
/// self.output(k) is empty when nobody holds that output any more (its
/// consumers save no inputs, e.g. y + 1): recompute it from the inputs then.
/// An op may also define `std::string rule(std::size_t input) const`, the
/// gradient rule in words that the graph player shows for that input.
/// forward returns an array, an xtensor expression (evaluated straight into
/// the graph node that holds it), or a std::vector of arrays for several
/// outputs.
#include <cstddef>
#include <memory>
#include <type_traits>
#include <string>
#include <utility>

#include "zerograd/function_io.hpp"
#include "zerograd/variable.hpp"

namespace zg {
namespace detail {
template <class Op, class = void>
struct HasRule : std::false_type {};
template <class Op>
struct HasRule<Op, std::void_t<decltype(std::declval<const Op&>().rule(std::size_t{}))>> : std::true_type {};
}  // namespace detail

/// The Function that call() and call_multi() record for a user op: it forwards
/// name, forward, backward and rule to op.
template <class Op, class T>
class CustomFunction final : public Function<T> {
 public:
  explicit CustomFunction(Op op) : op_(std::move(op)) {}  ///< holds a copy of op
  std::string name() const override { return op_.name(); }
  Outputs<T> forward(const TensorList<T>& xs) override { return op_.template forward<T>(xs); }
  Variables<T> backward(const Variables<T>& gys) override { return op_.template backward<T>(*this, gys); }
  std::string rule(std::size_t input) const override {
    if constexpr (detail::HasRule<Op>::value) return op_.rule(input);
    else return Function<T>::rule(input);
  }
  const Op& op() const { return op_; }  ///< the user op

 private:
  Op op_;
};

/// Applies a user op to Variables of one dtype; returns all outputs.
template <class Op, class T, class... Rest>
Variables<T> call_multi(Op op, const BasicVariable<T>& first, const Rest&... rest) {
  static_assert((std::is_same_v<Rest, BasicVariable<T>> && ...),
                "zg::call: every input must be a Variable of the same dtype (float or double)");
  return apply<T>(std::make_shared<CustomFunction<Op, T>>(std::move(op)), Variables<T>{first, rest...});
}

/// The same for ops with one output.
template <class Op, class T, class... Rest>
BasicVariable<T> call(Op op, const BasicVariable<T>& first, const Rest&... rest) {
  Variables<T> ys = call_multi(std::move(op), first, rest...);
  if (ys.size() != 1)
    throw Error(ys.empty() ? "zg::call: the op returned no output" : "zg::call: the op returned " +
                std::to_string(ys.size()) + " outputs; use zg::call_multi");
  return ys[0];
}

}  // namespace zg
