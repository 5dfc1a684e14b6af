#pragma once
// ReLU and 2x2 max pooling in the copies out of oneDNN's blocked layouts and
// back (Note [ReLU in the reorders] and Note [Pooling in the reorders] in
// blocked_reorders.cpp), for the oneDNN path's fused ops (conv_dnnl.cpp).
#include <array>
#include <cstddef>
#include <cstdint>

namespace zg::nn::onednn {

struct Planes {
  std::size_t N, C, HW, B;  // (N, C, HW) plain, (N, C/B, HW, B) blocked
};

// y = max(blocked, 0), NaN staying NaN (a select, as zg::relu), and where
// positive is not null, positive = y > 0.
void relu_from_blocked(const float* blocked, const Planes& p, float* y, std::uint8_t* positive);
// blocked = gy where positive, 0 elsewhere: ReLU's backward on the way in.
void switched_to_blocked(const float* gy, const std::uint8_t* positive, const Planes& p, float* blocked);

struct Window {
  std::size_t N, C, OH, OW, B;  // the convolution's output, blocked by B; pooled: (OH / 2, OW / 2)
  std::size_t pooled() const { return (OH / 2) * (OW / 2); }
  // Pooled output i's window: the offset of its top-left position in a
  // block, and those of its four positions (row-major) from there.
  std::size_t corner(std::size_t i) const { return (2 * (i / (OW / 2)) * OW + 2 * (i % (OW / 2))) * B; }
  std::array<std::size_t, 4> offsets() const { return {0, B, OW * B, (OW + 1) * B}; }
};

// pooled (N, C, OH / 2, OW / 2) = 2x2 max pooling, stride 2, of relu(blocked);
// at (may be null) the position bytes, in blocked order.
void relu_pool_from_blocked(const float* blocked, const Window& p, float* pooled, std::uint8_t* at);
// blocked (N, C/B, OH, OW, B) = gy (N, C, OH / 2, OW / 2) spread over the
// windows: each value to the position its byte in at names, 0 elsewhere
// (and 0 in a last row or column no window covers).
void unpooled_to_blocked(const float* gy, const std::uint8_t* at, const Window& p, float* blocked);

}  // namespace zg::nn::onednn
