#pragma once
/// @file
/// Convolution and pooling on (N, C, H, W) batches: nn/src/ops/conv.cpp,
/// conv_fused.cpp and pool.cpp.
///
/// Every op here is linear in each input (max pooling is, at fixed arg-max
/// positions), so each backward is another op of this family and gradients of
/// any order work:
///   conv2d(x, W)               dx: conv_transpose2d(gy, W)   dW: conv2d_grad_weight(x, gy)
///   conv_transpose2d(g, W)     dg: conv2d(gy, W)             dW: conv2d_grad_weight(gy, g)
///   conv2d_grad_weight(x, g)   dx: conv_transpose2d(g, gy)   dg: conv2d(x, gy)
///   max_pool2d / avg_pool2d    their backward scatters gy over the windows
///                              (Functions "MaxPool2dGrad" / "AvgPool2dGrad"),
///                              whose backward gathers again.
/// Stride and padding are the same along H and W. Output sizes floor:
/// OH = (H + 2 pad - KH) / stride + 1, and must be at least 1.
#include <cstddef>
#include <string>

#include "zerograd/nn/module.hpp"
#include "zerograd/variable.hpp"

namespace zg::nn::functional {

/// y (N, FN, OH, OW) = x (N, C, H, W) cross-correlated with W (FN, C, KH, KW),
/// plus b (FN) per output channel. An empty b means no bias. im2col + one GEMM
/// per sample: Function "Conv2d".
template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& W, const Var<T>& b = Var<T>(), int stride = 1, int pad = 0);

/// relu(conv2d(x, W, b, stride, pad)) as one Function "Conv2dReLU": the same
/// values and gradients as the two ops, without the pre-activation array
/// (Note [Conv2d with ReLU] in nn/src/ops/conv_fused.cpp). Sequential runs
/// a Conv2d layer followed by a ReLU layer this way.
template <class T>
Var<T> conv2d_relu(const Var<T>& x, const Var<T>& W, const Var<T>& b = Var<T>(), int stride = 1, int pad = 0);

/// max_pool2d(relu(conv2d(x, W, b, stride, pad)), 2) as one Function
/// "Conv2dReLUMaxPool": the same values and gradients as the three ops,
/// without the full-size output (Note [Conv2d with ReLU and pooling] in
/// nn/src/ops/conv_fused.cpp). Sequential runs a Conv2d, a ReLU and a 2x2 MaxPool2d
/// with stride 2 and no padding this way.
template <class T>
Var<T> conv2d_relu_pool(const Var<T>& x, const Var<T>& W, const Var<T>& b = Var<T>(), int stride = 1, int pad = 0);

/// The adjoint of conv2d with respect to its input (PyTorch's conv_transpose2d
/// without bias): x (N, FN, OH, OW) with W (FN, C, KH, KW) gives (N, C, H, Wd)
/// where (H, Wd) = output_size, or when output_size is empty the smallest size
/// whose convolution is (OH, OW): H = (OH - 1) stride + KH - 2 pad. Overlapping
/// windows accumulate (col2im). Function "ConvTranspose2d".
template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& W, int stride = 1, int pad = 0,
                        const Shape& output_size = {});

/// The gradient of conv2d with respect to its weight: x (N, C, H, W) and
/// gy (N, FN, OH, OW) give (FN, C, KH, KW) for kernel_size (KH, KW).
/// Function "Conv2dGradW".
template <class T>
Var<T> conv2d_grad_weight(const Var<T>& x, const Var<T>& gy, const Shape& kernel_size, int stride = 1,
                          int pad = 0);

/// Max over kernel x kernel windows; padding counts as -infinity (pad may be
/// at most kernel / 2, as in PyTorch, so no window is only padding). The
/// gradient goes to the first maximum of each window in row-major order; a NaN
/// in a window wins, as in PyTorch. Function "MaxPool2d".
template <class T>
Var<T> max_pool2d(const Var<T>& x, int kernel, int stride, int pad = 0);
template <class T>
Var<T> max_pool2d(const Var<T>& x, int kernel);  ///< stride = kernel

/// Mean over kernel x kernel windows; padding counts as zeros, so every window
/// divides by kernel^2 (PyTorch's count_include_pad = true). Function "AvgPool2d".
template <class T>
Var<T> avg_pool2d(const Var<T>& x, int kernel, int stride, int pad = 0);
template <class T>
Var<T> avg_pool2d(const Var<T>& x, int kernel);  ///< stride = kernel

}  // namespace zg::nn::functional

namespace zg::nn {

/// A 2-D convolution over (N, C, H, W), as PyTorch's Conv2d with square
/// kernels: weight (out, in, kernel, kernel), bias (out) starting at zero. weight_std 0
/// means He init, std sqrt(2 / (in * kernel^2)); a positive value draws the
/// weight from normal(0, weight_std) (the book's SimpleConvNet uses 0.01).
template <class T>
class BasicConv2d : public BasicModule<T> {
 public:
  /// A kernel x kernel convolution from in_channels to out_channels.
  BasicConv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, int stride = 1, int pad = 0,
              double weight_std = 0);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  /// relu(forward(x)) in one Function (functional::conv2d_relu).
  BasicVariable<T> forward_relu(const BasicVariable<T>& x);
  /// max_pool2d(relu(forward(x)), 2) in one Function (functional::conv2d_relu_pool).
  BasicVariable<T> forward_relu_pool(const BasicVariable<T>& x);
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override {
    return nn::rebuild<BasicConv2d>(dtype, in_, out_, kernel_, stride_, pad_, 0.0);
  }
  ///@{
  /// The parameters, weight (out, in, kernel, kernel) and bias (out).
  BasicVariable<T> weight, bias;
  ///@}

 private:
  std::size_t in_, out_, kernel_;
  int stride_, pad_;
};
using Conv2d = BasicConv2d<float>;  ///< the float Conv2d

/// Max pooling over (N, C, H, W) in kernel x kernel windows, as PyTorch's
/// MaxPool2d; stride 0 means stride = kernel.
template <class T>
class BasicMaxPool2d : public BasicModule<T> {
 public:
  explicit BasicMaxPool2d(int kernel, int stride = 0, int pad = 0);  ///< padding of pad on each side, never the maximum
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  int kernel() const { return kernel_; }  ///< the window size
  int stride() const { return stride_; }  ///< the stride (kernel when built with 0)
  int pad() const { return pad_; }  ///< the padding on each side
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicMaxPool2d>(dtype, kernel_, stride_, pad_); }

 private:
  int kernel_, stride_, pad_;
};
using MaxPool2d = BasicMaxPool2d<float>;  ///< the float MaxPool2d

/// Average pooling over (N, C, H, W) in kernel x kernel windows, as PyTorch's
/// AvgPool2d; stride 0 means stride = kernel.
template <class T>
class BasicAvgPool2d : public BasicModule<T> {
 public:
  /// Zero padding of pad on each side, counted in the averages.
  explicit BasicAvgPool2d(int kernel, int stride = 0, int pad = 0);
  BasicVariable<T> forward(const BasicVariable<T>& x) override;
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  AnyModule rebuild(Dtype dtype) const override { return nn::rebuild<BasicAvgPool2d>(dtype, kernel_, stride_, pad_); }

 private:
  int kernel_, stride_, pad_;
};
using AvgPool2d = BasicAvgPool2d<float>;  ///< the float AvgPool2d

}  // namespace zg::nn
