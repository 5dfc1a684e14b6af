#include "kernels/geometry.hpp"

namespace zg::nn::kernels {

std::string hw(std::size_t h, std::size_t w) { return std::to_string(h) + "x" + std::to_string(w); }

void require_4d(const std::string& op, const Shape& x, const char* what, const char* layout) {
  if (x.size() != 4)
    throw ShapeError(op + ": " + what + " must be 4-D " + layout + ", got " + shape_str(x));
}

void check_stride_pad(const std::string& op, int stride, int pad) {
  if (stride < 1) throw ShapeError(op + ": stride must be >= 1, got " + std::to_string(stride));
  if (pad < 0) throw ShapeError(op + ": pad must be >= 0, got " + std::to_string(pad));
}

void check_pool_params(const std::string& op, int kernel, int stride, int pad) {
  if (kernel < 1) throw ShapeError(op + ": kernel must be >= 1, got " + std::to_string(kernel));
  check_stride_pad(op, stride, pad);
  if (pad > kernel / 2)
    throw ShapeError(op + ": pad " + std::to_string(pad) + " is more than half the kernel " +
                     std::to_string(kernel));
}

Geometry geometry(const std::string& op, const Shape& x, std::size_t KH, std::size_t KW, int stride, int pad) {
  require_4d(op, x, "input", "(N, C, H, W)");
  check_stride_pad(op, stride, pad);
  const std::size_t S = static_cast<std::size_t>(stride), P = static_cast<std::size_t>(pad);
  const std::size_t H = x[2] + 2 * P, W = x[3] + 2 * P;
  if (KH == 0 || KW == 0 || KH > H || KW > W)
    throw ShapeError(op + ": kernel " + hw(KH, KW) + " does not fit the padded input " + hw(H, W) +
                     " (input " + shape_str(x) + ", pad " + std::to_string(P) + ")");
  return {x[0], x[1], x[2], x[3], KH, KW, (H - KH) / S + 1, (W - KW) / S + 1, S, P};
}

Geometry pool_geometry(const std::string& op, const Shape& x, int kernel, int stride, int pad) {
  require_4d(op, x, "input", "(N, C, H, W)");
  check_pool_params(op, kernel, stride, pad);
  if (x[2] == 0 || x[3] == 0) throw ShapeError(op + ": input " + shape_str(x) + " has empty planes");
  return geometry(op, x, static_cast<std::size_t>(kernel), static_cast<std::size_t>(kernel), stride, pad);
}

std::string conv_attributes(int stride, int pad) {
  return "stride=" + std::to_string(stride) + ", pad=" + std::to_string(pad);
}

std::string pool_attributes(int kernel, int stride, int pad) {
  return "kernel=" + std::to_string(kernel) + ", " + conv_attributes(stride, pad);
}

}  // namespace zg::nn::kernels
