#pragma once
// Linear algebra on BLAS: matmul and the fused linear: autograd/src/ops_linalg.cpp.
#include "zerograd/variable.hpp"

namespace zg {

}  // namespace zg
