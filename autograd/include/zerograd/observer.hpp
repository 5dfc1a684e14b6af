#pragma once
/// @file
/// Forward observers: a per-thread callback after every forward (the apple
/// demo narrates with it; gradcheck cases check which Functions ran).
#include <functional>

#include "zerograd/variable.hpp"

namespace zg {

/// What a forward observer sees: the Function that just ran forward, its
/// inputs and its outputs.
template <class T>
struct ForwardStep {
  const Function<T>& function;  ///< the Function
  const Variables<T>& inputs;  ///< its inputs
  const Variables<T>& outputs;  ///< its outputs
};

/// While alive, fn is called after every forward of a Function in this
/// thread (float or double, as T says).
template <class T>
class ForwardObserverGuard {
 public:
  /// Installs fn for this thread until the guard dies.
  explicit ForwardObserverGuard(std::function<void(const ForwardStep<T>&)> fn);
  ~ForwardObserverGuard();
  ForwardObserverGuard(const ForwardObserverGuard&) = delete;
  ForwardObserverGuard& operator=(const ForwardObserverGuard&) = delete;

 private:
  std::function<void(const ForwardStep<T>&)> fn_;
  std::function<void(const ForwardStep<T>&)>* previous_;
};

namespace detail {
// This thread's innermost observer, or null.
template <class T>
std::function<void(const ForwardStep<T>&)>* forward_observer();
}  // namespace detail

}  // namespace zg
