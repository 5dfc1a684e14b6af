#pragma once
// MaxPool2d's gradient, which Conv2dReLUMaxPool's backward (conv_fused.cpp)
// also builds under create_graph.
#include <memory>

#include "zerograd/variable.hpp"

#include "kernels/pool.hpp"

namespace zg::nn::functional {

// gy scattered to the saved positions of a max pooling: Function "MaxPool2dGrad".
template <class T>
Var<T> max_pool2d_grad(const Var<T>& gy, std::shared_ptr<const kernels::ArgMax> argmax, int kernel, int stride,
                       int pad);

}  // namespace zg::nn::functional
