#pragma once
// What backward() and grad() share: the engine run (engine.cpp) and the
// checks of their arguments (grad.cpp).
#include <string>

#include "zerograd/variable.hpp"

namespace zg::detail {

template <class T>
BasicVariable<T> seed_for(const BasicVariable<T>& root, const BasicVariable<T>& seed, const char* op);
template <class T>
void check_requires_grad(const BasicVariable<T>& v, const std::string& what);
template <class T>
void run_engine(const Variables<T>& roots, const Variables<T>& seeds, BackwardOptions<T> options,
                const Variables<T>* inputs = nullptr, Variables<T>* results = nullptr);

}  // namespace zg::detail
