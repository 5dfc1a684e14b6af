// Every differentiable Function autograd defines, by name (nn's are in
// nn/src/op_list.cpp). The test suite fails for any name here without a
// gradcheck case that runs it.
#include "zerograd/ops.hpp"

namespace zg {

std::vector<std::string> differentiable_ops() {
  static const std::vector<std::string> names = {
      // arithmetic
      "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Square", "AddConst", "MulConst", "RDivConst",
      // shape
      "Reshape", "BroadcastTo", "SumTo",
      // reductions
      "Sum",
      // ops_math.hpp (math, activation, comparison)
      "Exp", "Log", "Sqrt", "Sin", "Cos", "Tanh", "Abs", "Sigmoid", "ReLU", "ReLUGrad", "LeakyReLU", "Clip",
      "Maximum", "Minimum", "Softmax", "LogSoftmax", "Where",
      // ops_tensor.hpp (shape and reductions)
      "Transpose", "GetItem", "GetItemGrad", "Concat", "Split", "Max", "Min", "LogSumExp",
      // ops_linalg.hpp
      "MatMul", "Linear",
  };
  return names;
}

}  // namespace zg
