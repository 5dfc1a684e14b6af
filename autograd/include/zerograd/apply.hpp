#pragma once
/// @file
/// How every op runs its Function: apply1. The engine's apply(f, inputs)
/// (variable.hpp) does the same work; these entry points skip what a
/// one-output op does not need, measured on op_overhead (bench/).
#include <initializer_list>
#include <memory>
#include <utility>

#include "zerograd/function_io.hpp"
#include "zerograd/variable.hpp"

namespace zg {
namespace detail {

// Note [Input references]: an input of apply1 refers to the caller's
// Variable instead of copying the handle. A copy is an atomic increment and
// decrement, 12 ns per input, a tenth of a small matmul's whole overhead;
// the caller's Variable (a temporary too) lives until the end of the full
// expression that calls apply1, which outlasts the call.
template <class T>
class InputRef {
 public:
  InputRef() = default;  // refers to nothing: only for filling arrays
  InputRef(const BasicVariable<T>& v) : v_(&v) {}
  const BasicVariable<T>& operator*() const { return *v_; }
  const BasicVariable<T>* operator->() const { return v_; }

 private:
  const BasicVariable<T>* v_ = nullptr;
};

// Whether a Function applied to inputs[0, n) is recorded in the graph.
template <class T>
bool records(const InputRef<T>* inputs, std::size_t n) {
  if (!is_grad_enabled()) return false;
  for (std::size_t i = 0; i < n; ++i)
    if (inputs[i]->defined() && inputs[i]->node()->requires_grad) return true;
  return false;
}

// apply for inputs[0, n), returning only the first output (engine.cpp).
template <class T>
BasicVariable<T> apply_one(std::shared_ptr<Function<T>> f, const InputRef<T>* inputs, std::size_t n);
// The same for a Function that records nothing: nothing keeps f after its
// forward, so it may live on the caller's stack.
template <class T>
BasicVariable<T> apply_unrecorded(Function<T>& f, const InputRef<T>* inputs, std::size_t n);

}  // namespace detail

// Note [Unrecorded ops]: when nothing is recorded (NoGradGuard, backward
// without create_graph, inputs that need no grad) the Function is built on
// the stack, not the heap: two allocations fewer per op.
/// Runs the one-output Function Op, built from args, on inputs and returns
/// its output; records it in the graph when grad mode is on and an input
/// requires grad. How every built-in op applies its Function.
template <class Op, class... Args>
BasicVariable<typename Op::value_type> apply1(std::initializer_list<detail::InputRef<typename Op::value_type>> inputs,
                                              Args&&... args) {
  using T = typename Op::value_type;
  if (!detail::records(inputs.begin(), inputs.size())) {
    Op op(std::forward<Args>(args)...);
    return detail::apply_unrecorded<T>(op, inputs.begin(), inputs.size());
  }
  return detail::apply_one<T>(std::make_shared<Op>(std::forward<Args>(args)...), inputs.begin(), inputs.size());
}

}  // namespace zg
