#pragma once
// float convolutions on oneDNN (Debian's libdnnl-dev), when the library was
// built with it: Note [oneDNN convolutions] in conv_dnnl.cpp.
#include <cstddef>
#include <cstdint>

namespace zg::nn::onednn {

// One convolution: x (N, C, H, W) with weight (FN, C, KH, KW), stride S and
// padding P on both axes, gives y (N, FN, OH, OW). All arrays are dense, C order.
struct ConvDims {
  std::size_t N, C, H, W, FN, KH, KW, OH, OW, S, P;
};

// Whether oneDNN runs this convolution: built in, not switched off, and a
// shape its kernels were measured to win on (16k channels, stride 1).
bool taken(const ConvDims& d);

// Each returns false, having written nothing, when oneDNN is not built in or
// is switched off (ZEROGRAD_CONV=im2col); the caller then runs im2col + GEMM.
// y = conv(x, w) + b (b may be null). With relu, y = max(that, 0) with NaN
// staying NaN, and where positive is not null, positive[i] = y[i] > 0 (one
// byte per output): Note [ReLU in the reorders].
bool conv2d(const ConvDims& d, const float* x, const float* w, const float* b, float* y, bool relu = false,
            std::uint8_t* positive = nullptr);
// gx = conv2d's gradient with respect to x for output gradient gy (conv_transpose2d).
bool backward_data(const ConvDims& d, const float* gy, const float* w, float* gx);
// gw = conv2d's gradient with respect to w (conv2d_grad_weight).
bool backward_weights(const ConvDims& d, const float* x, const float* gy, float* gw);
// Both gradients and the bias's at once (Note [One pass over gy]): gx (null
// when not wanted), gw, and gb (null without a bias). With positive (from
// conv2d with relu), gy counts as 0 where positive is 0: ReLU's backward.
// False, having written nothing, where oneDNN cannot (or cannot apply
// positive); the caller then runs the three apart.
bool backward(const ConvDims& d, const float* x, const float* gy, const float* w, float* gx, float* gw, float* gb,
              const std::uint8_t* positive = nullptr);

// conv2d with relu, then 2x2 max pooling with stride 2: pooled (N, FN, OH / 2,
// OW / 2), and where at is not null one byte per pooled output, the window
// position (0-3, row-major) of its maximum, or 4 where that is not > 0 (Note
// [Pooling in the reorders]). The bytes are in oneDNN's blocked order (N, FN
// / B, OH / 2 * OW / 2, B); the block B is returned. 0, having written
// nothing, where oneDNN does not run this convolution or does not give it a
// blocked output.
std::size_t conv2d_relu_pool(const ConvDims& d, const float* x, const float* w, const float* b, float* pooled,
                             std::uint8_t* at);
// backward() for conv2d_relu_pool's pooled gy and bytes at in blocks of
// block: gy goes back to its window's maximum where at says so.
bool backward_pooled(const ConvDims& d, const float* x, const float* gy, const std::uint8_t* at, std::size_t block,
                     const float* w, float* gx, float* gw, float* gb);

}  // namespace zg::nn::onednn
