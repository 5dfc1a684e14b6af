#pragma once
// GELU and its derivative over flat arrays (Note [GELU in one pass] in
// gelu.cpp).
#include <cstddef>

namespace zg::nn::kernels {

// y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), or with tanh_approximation
// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), for n elements.
template <class T>
void gelu(const T* x, T* y, std::size_t n, bool tanh_approximation);

// gx = gy gelu'(x) for n elements: gelu'(x) = Phi(x) + x phi(x), or the
// tanh form's derivative.
template <class T>
void gelu_backward(const T* gy, const T* x, T* gx, std::size_t n, bool tanh_approximation);

}  // namespace zg::nn::kernels
