#pragma once
/// @file
/// Every differentiable operation on Variables, one header per family; each
/// family's Functions are defined in `autograd/src/ops/<family>.cpp` and
/// instantiated there for float and double.
#include "zerograd/op_registry.hpp"
#include "zerograd/ops/activation.hpp"
#include "zerograd/ops/arithmetic.hpp"
#include "zerograd/ops/linalg.hpp"
#include "zerograd/ops/math.hpp"
#include "zerograd/ops/reduce.hpp"
#include "zerograd/ops/shape.hpp"
#include "zerograd/ops/tensor.hpp"
