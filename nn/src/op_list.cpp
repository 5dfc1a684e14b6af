// Every differentiable Function nn defines, by name (autograd's are in
// autograd/src/op_list.cpp). The test suite fails for any name here without
// a gradcheck case that runs it.
#include "zerograd/nn/functional.hpp"

namespace zg::nn {

const std::vector<std::string>& differentiable_ops() {
  static const std::vector<std::string> names = {
      "SoftmaxCrossEntropy", "Conv2d", "Conv2dReLU", "Conv2dReLUMaxPool", "ConvTranspose2d", "Conv2dGradW",
      "MaxPool2d", "MaxPool2dGrad",
      "AvgPool2d", "AvgPool2dGrad", "Erf", "Embedding",
  };
  return names;
}

}  // namespace zg::nn
