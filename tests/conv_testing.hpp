#pragma once
// What the convolution and pooling tests share (test_conv.cpp,
// test_conv_fused.cpp, test_pool.cpp): inputs, the definition of a
// convolution in long double and double, and the shapes they run on.
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <type_traits>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xmath.hpp>

#include <zerograd/nn/conv.hpp>

#include "testing.hpp"

using namespace zg;
namespace F = zg::nn::functional;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;


namespace conv_testing {

template <class T>
BasicVariable<T> random(const Shape& shape, unsigned seed) {
  return BasicVariable<T>(Tensor<T>(uniform(shape, -1.0, 1.0, seed).data()));
}

// Distinct values 0.1, 0.2, ... in random order with random signs: no two
// elements of a pooling window are within a gradcheck step of each other.
inline Variable64 permuted(const Shape& shape, unsigned seed) {
  Tensor<double> t = Tensor<double>::from_shape(shape);
  std::vector<std::size_t> order(t.size());
  std::iota(order.begin(), order.end(), 1);
  std::mt19937 gen(seed);
  std::shuffle(order.begin(), order.end(), gen);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = 0.1 * double(order[i]) * (gen() % 2 ? 1 : -1);
  return Variable64(std::move(t));
}

template <class T = float>
BasicVariable<T> arange(const Shape& shape) {
  Tensor<T> t = Tensor<T>::from_shape(shape);
  std::iota(t.begin(), t.end(), T(0));
  return BasicVariable<T>(std::move(t));
}

inline Variable filled(const Shape& shape, std::initializer_list<float> values) {
  Tensor<float> t = Tensor<float>::from_shape(shape);
  REQUIRE(values.size() == t.size());
  std::copy(values.begin(), values.end(), t.begin());
  return Variable(std::move(t));
}

struct Case {
  std::size_t H, W, KH, KW;
  int S, P;
};
// Square and non-square kernels, stride 2 with pad 1, floor division that
// drops the last row (6x6, 3x3, stride 2, pad 0), a kernel larger than the
// unpadded input, 1x1; output rows of 8 or more values (10; 9 with pad 1),
// copied in 32-byte pieces with an overlapping last piece.
inline const std::vector<Case> kCases = {{5, 5, 3, 3, 1, 0}, {5, 5, 3, 3, 1, 1}, {7, 7, 3, 3, 2, 1}, {6, 6, 3, 3, 2, 1},
                                  {6, 6, 3, 3, 2, 0}, {5, 6, 2, 3, 1, 0}, {7, 5, 3, 2, 2, 1}, {8, 9, 5, 3, 3, 2},
                                  {4, 4, 1, 1, 1, 0}, {3, 3, 5, 5, 1, 2}, {12, 11, 3, 3, 1, 1}, {6, 12, 3, 3, 1, 0},
                                  {7, 11, 3, 5, 1, 1}};

// A sum computed in long double with the sum of |terms| beside it, which
// bounds the rounding error of the same sum in T.
struct Exact {
  explicit Exact(std::size_t n) : value(n), mag(n) {}
  void add(std::size_t i, long double a, long double b) {
    value[i] += a * b;
    mag[i] += std::abs(a * b);
  }
  std::vector<long double> value, mag;
};

template <class T>
inline std::size_t count_far(const Tensor<T>& got, const Exact& ref, std::size_t terms) {
  const long double u = std::numeric_limits<T>::epsilon();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(got.data()[i] - ref.value[i]) <= 2 * (terms + 1) * u * ref.mag[i])) ++bad;  // NaN too
  return bad;
}

// y = conv(x, W) + b by the definition, and the gradients of sum(g * y).
struct Reference {
  Exact y, gx, gW, gb;
  std::size_t terms;  // the most terms any of those sums has
};
template <class T>
Reference reference(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>* b, const Tensor<T>& g, int S, int P) {
  const std::size_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const std::size_t FN = w.shape()[0], KH = w.shape()[2], KW = w.shape()[3];
  const std::size_t OH = g.shape()[2], OW = g.shape()[3];
  Reference r{Exact(g.size()), Exact(x.size()), Exact(w.size()), Exact(FN), 0};
  r.terms = std::max({C * KH * KW + 1, FN * KH * KW, N * OH * OW});
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t f = 0; f < FN; ++f)
      for (std::size_t oh = 0; oh < OH; ++oh)
        for (std::size_t ow = 0; ow < OW; ++ow) {
          const std::size_t yi = ((n * FN + f) * OH + oh) * OW + ow;
          const long double gv = g.data()[yi];
          if (b) r.y.add(yi, (*b)(f), 1);
          r.gb.add(f, gv, 1);
          for (std::size_t c = 0; c < C; ++c)
            for (std::size_t kh = 0; kh < KH; ++kh)
              for (std::size_t kw = 0; kw < KW; ++kw) {
                const std::ptrdiff_t ih = std::ptrdiff_t(oh) * S - P + std::ptrdiff_t(kh);
                const std::ptrdiff_t iw = std::ptrdiff_t(ow) * S - P + std::ptrdiff_t(kw);
                if (ih < 0 || iw < 0 || ih >= std::ptrdiff_t(H) || iw >= std::ptrdiff_t(W)) continue;
                const std::size_t xi = ((n * C + c) * H + std::size_t(ih)) * W + std::size_t(iw);
                const std::size_t wi = ((f * C + c) * KH + kh) * KW + kw;
                r.y.add(yi, w.data()[wi], x.data()[xi]);
                r.gx.add(xi, gv, w.data()[wi]);
                r.gW.add(wi, gv, x.data()[xi]);
              }
        }
  return r;
}

inline std::size_t out_size(std::size_t in, std::size_t k, int S, int P) { return (in + 2 * std::size_t(P) - k) / S + 1; }

// conv2d forward and the gradients of sum(g * y) by the definition, in double.
struct Direct {
  std::vector<double> y, gx, gW, gb;
};
inline Direct direct(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& b, const Tensor<double>& g,
              int P) {
  const std::size_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const std::size_t FN = w.shape()[0], K = w.shape()[2], OH = g.shape()[2], OW = g.shape()[3];
  Direct d{std::vector<double>(g.size()), std::vector<double>(x.size()), std::vector<double>(w.size()),
           std::vector<double>(FN)};
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t f = 0; f < FN; ++f)
      for (std::size_t oh = 0; oh < OH; ++oh)
        for (std::size_t ow = 0; ow < OW; ++ow) {
          const std::size_t yi = ((n * FN + f) * OH + oh) * OW + ow;
          const double gv = g.data()[yi];
          double acc = b(f);
          d.gb[f] += gv;
          for (std::size_t c = 0; c < C; ++c)
            for (std::size_t kh = 0; kh < K; ++kh) {
              const std::ptrdiff_t ih = std::ptrdiff_t(oh + kh) - P;
              if (ih < 0 || ih >= std::ptrdiff_t(H)) continue;
              for (std::size_t kw = 0; kw < K; ++kw) {
                const std::ptrdiff_t iw = std::ptrdiff_t(ow + kw) - P;
                if (iw < 0 || iw >= std::ptrdiff_t(W)) continue;
                const std::size_t xi = ((n * C + c) * H + std::size_t(ih)) * W + std::size_t(iw);
                const std::size_t wi = ((f * C + c) * K + kh) * K + kw;
                acc += w.data()[wi] * x.data()[xi];
                d.gx[xi] += gv * w.data()[wi];
                d.gW[wi] += gv * x.data()[xi];
              }
            }
          d.y[yi] = acc;
        }
  return d;
}

// max |got - want| / max |want|: float32 rounding of a sum is about 1e-7
// relative to the sum of |terms|, far below the 1e-4 asked for.
template <class A, class B>
double relative_error(const A& got, const B& want) {
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = std::abs(double(got.data()[i]) - double(want.data()[i]));
    if (!std::isfinite(d)) return std::numeric_limits<double>::infinity();  // a NaN fails, not vanishes
    err = std::max(err, d);
    scale = std::max(scale, std::abs(double(want.data()[i])));
  }
  return err / scale;
}

struct Layer {
  std::size_t C, H, FN;
  int P;
};
// DeepConvNet's six 3x3 convolutions (the book's chapter 8) on 28x28 input, and odd ones:
// pad 0, a 7x7 input, an odd channel count.
inline const std::vector<Layer> kDeepLayers = {{1, 28, 16, 1},  {16, 28, 16, 1}, {16, 14, 32, 1}, {32, 14, 32, 2},
                                        {32, 8, 64, 1},  {64, 8, 64, 1},  {3, 9, 5, 0},    {7, 7, 9, 2}};

// conv2d in float32 on float64 data, forward and backward from seed g64.
struct Float32Run {
  Tensor<float> y, gx, gW, gb;
};
inline Float32Run float32_run(const Variable64& x64, const Variable64& w64, const Variable64& b64, const Variable64& g64,
                       int P) {
  auto x = Variable(Tensor<float>(x64.data())).requires_grad_();
  auto w = Variable(Tensor<float>(w64.data())).requires_grad_();
  auto b = Variable(Tensor<float>(b64.data())).requires_grad_();
  Variable::BackwardOptions options;
  options.seed = Variable(Tensor<float>(g64.data()));
  const Variable y = F::conv2d(x, w, b, 1, P);
  y.backward(options);
  return {y.data(), x.grad().data(), w.grad().data(), b.grad().data()};
}

struct GradCase {
  Shape x, w;
  int S, P;
};
inline const std::vector<GradCase> kGradCases = {
    {{2, 3, 5, 5}, {4, 3, 3, 3}, 1, 0}, {{2, 3, 5, 5}, {4, 3, 3, 3}, 1, 1}, {{2, 3, 5, 5}, {4, 3, 3, 3}, 2, 1},
    {{2, 3, 6, 6}, {4, 3, 3, 3}, 2, 0}, {{1, 2, 5, 4}, {3, 2, 3, 2}, 2, 1}, {{2, 2, 4, 4}, {2, 2, 1, 1}, 1, 0}};

}  // namespace conv_testing

using namespace conv_testing;
