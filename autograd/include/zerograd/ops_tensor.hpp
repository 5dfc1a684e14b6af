#pragma once
// Shape ops (transpose, expand_dims, squeeze, flatten, get_item, concat, stack, split) and reductions (mean, max, min, logsumexp, argmax): autograd/src/ops_tensor.cpp, ops_reduce.cpp.
#include "zerograd/variable.hpp"

namespace zg {

}  // namespace zg
