// The Conv2d, MaxPool2d and AvgPool2d layers over the ops in ops/conv.cpp
// and ops/pool.cpp.
#include <cmath>

#include <xtensor/xbuilder.hpp>

#include "zerograd/nn/conv.hpp"
#include "zerograd/nn/init.hpp"

#include "kernels/geometry.hpp"

namespace zg::nn {

template <class T>
BasicConv2d<T>::BasicConv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, int stride, int pad,
                            double weight_std)
    : in_(in_channels), out_(out_channels), kernel_(kernel), stride_(stride), pad_(pad) {
  if (in_channels == 0 || out_channels == 0 || kernel == 0)
    throw ValueError("Conv2d: in_channels, out_channels and kernel must be >= 1, got " + extra_repr());
  kernels::check_stride_pad("Conv2d", stride, pad);
  if (!(weight_std >= 0) || std::isinf(weight_std))
    throw ValueError("Conv2d: weight_std must be finite and >= 0 (0: He init), got " + std::to_string(weight_std));
  weight = this->register_parameter("weight", BasicVariable<T>(Tensor<T>::from_shape({out_, in_, kernel_, kernel_})));
  init::normal(weight, weight_std > 0 ? weight_std : std::sqrt(2.0 / double(in_ * kernel_ * kernel_)));
  bias = this->register_parameter("bias", BasicVariable<T>(Tensor<T>(xt::zeros<T>({out_}))));
}

template <class T>
BasicVariable<T> BasicConv2d<T>::forward(const BasicVariable<T>& x) {
  return functional::conv2d(x, weight, bias, stride_, pad_);
}

template <class T>
BasicVariable<T> BasicConv2d<T>::forward_relu(const BasicVariable<T>& x) {
  return functional::conv2d_relu(x, weight, bias, stride_, pad_);
}

template <class T>
BasicVariable<T> BasicConv2d<T>::forward_relu_pool(const BasicVariable<T>& x) {
  return functional::conv2d_relu_pool(x, weight, bias, stride_, pad_);
}

template <class T>
std::string BasicConv2d<T>::extra_repr() const {
  return "in=" + std::to_string(in_) + ", out=" + std::to_string(out_) + ", kernel=" + std::to_string(kernel_) +
         ", stride=" + std::to_string(stride_) + ", pad=" + std::to_string(pad_);
}

template <class T>
BasicMaxPool2d<T>::BasicMaxPool2d(int kernel, int stride, int pad)
    : kernel_(kernel), stride_(stride == 0 ? kernel : stride), pad_(pad) {
  kernels::check_pool_params("MaxPool2d", kernel_, stride_, pad_);
}

template <class T>
BasicVariable<T> BasicMaxPool2d<T>::forward(const BasicVariable<T>& x) {
  return functional::max_pool2d(x, kernel_, stride_, pad_);
}

template <class T>
std::string BasicMaxPool2d<T>::extra_repr() const {
  return kernels::pool_attributes(kernel_, stride_, pad_);
}

template <class T>
BasicAvgPool2d<T>::BasicAvgPool2d(int kernel, int stride, int pad)
    : kernel_(kernel), stride_(stride == 0 ? kernel : stride), pad_(pad) {
  kernels::check_pool_params("AvgPool2d", kernel_, stride_, pad_);
}

template <class T>
BasicVariable<T> BasicAvgPool2d<T>::forward(const BasicVariable<T>& x) {
  return functional::avg_pool2d(x, kernel_, stride_, pad_);
}

template <class T>
std::string BasicAvgPool2d<T>::extra_repr() const {
  return kernels::pool_attributes(kernel_, stride_, pad_);
}

template class BasicConv2d<float>;
template class BasicConv2d<double>;
template class BasicMaxPool2d<float>;
template class BasicMaxPool2d<double>;
template class BasicAvgPool2d<float>;
template class BasicAvgPool2d<double>;

}  // namespace zg::nn
