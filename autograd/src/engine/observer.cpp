// Forward observers (zerograd/observer.hpp).
#include "zerograd/observer.hpp"

namespace zg {
namespace {
template <class T>
thread_local std::function<void(const ForwardStep<T>&)>* current = nullptr;
}  // namespace

template <class T>
std::function<void(const ForwardStep<T>&)>* detail::forward_observer() {
  return current<T>;
}

template <class T>
ForwardObserverGuard<T>::ForwardObserverGuard(std::function<void(const ForwardStep<T>&)> fn)
    : fn_(std::move(fn)), previous_(current<T>) {
  current<T> = &fn_;
}
template <class T>
ForwardObserverGuard<T>::~ForwardObserverGuard() {
  current<T> = previous_;
}

template class ForwardObserverGuard<float>;
template class ForwardObserverGuard<double>;
template std::function<void(const ForwardStep<float>&)>* detail::forward_observer<float>();
template std::function<void(const ForwardStep<double>&)>* detail::forward_observer<double>();

}  // namespace zg
