#pragma once
// Elementwise math, activations (softmax, log_softmax), comparisons and where: autograd/src/ops_math.cpp, ops_activation.cpp.
#include "zerograd/variable.hpp"

namespace zg {

}  // namespace zg
