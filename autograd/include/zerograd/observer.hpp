#pragma once
// Forward observers: a per-thread callback after every forward (the apple
// demo narrates with it; gradcheck cases check which Functions ran).
#include <functional>

#include "zerograd/variable.hpp"

namespace zg {

template <class T>
struct ForwardStep {
  const Function<T>& function;
  const Variables<T>& inputs;
  const Variables<T>& outputs;
};

// While alive, fn is called after every forward of a Function in this
// thread (float or double, as T says).
template <class T>
class ForwardObserverGuard {
 public:
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
