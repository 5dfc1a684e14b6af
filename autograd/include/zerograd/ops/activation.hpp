#pragma once
/// @file
/// Activations: sigmoid, relu, leaky_relu, softmax, log_softmax: autograd/src/ops/activation.cpp.
#include <cstddef>

#include "zerograd/ops/math.hpp"
#include "zerograd/variable.hpp"

namespace zg {

// Activations
/// 1 / (1 + exp(-x)), computed from exp(-|x|) so that no exp overflows.
template <class T> Var<T> sigmoid(const Var<T>& x);
/// max(x, 0); the gradient at x = 0 is 0.
template <class T> Var<T> relu(const Var<T>& x);
/// x for x > 0, slope * x otherwise.
template <class T> Var<T> leaky_relu(const Var<T>& x, Scalar<T> slope = Scalar<T>(0.01));
/// exp(x) / sum(exp(x)) along one axis (negative counts from the end), stable: the max along the
/// axis is subtracted first. A bad axis throws ShapeError.
template <class T> Var<T> softmax(const Var<T>& x, std::ptrdiff_t axis = -1);
/// log(softmax(x)) along axis, computed as x - logsumexp(x) (stable).
template <class T> Var<T> log_softmax(const Var<T>& x, std::ptrdiff_t axis = -1);

}  // namespace zg
