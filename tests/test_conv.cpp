// conv2d, conv_transpose2d, conv2d_grad_weight, max_pool2d, avg_pool2d and
// their layers: values and gradients against direct nested loops, the book's
// pooling reference, tie and padding rules, gradcheck of every Function to
// second order, SimpleConvNet's first layers and the bad-input messages.
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

namespace {

template <class T>
BasicVariable<T> random(const Shape& shape, unsigned seed) {
  return BasicVariable<T>(Tensor<T>(uniform(shape, -1.0, 1.0, seed).data()));
}

// Distinct values 0.1, 0.2, ... in random order with random signs: no two
// elements of a pooling window are within a gradcheck step of each other.
Variable64 permuted(const Shape& shape, unsigned seed) {
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

Variable filled(const Shape& shape, std::initializer_list<float> values) {
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
const std::vector<Case> kCases = {{5, 5, 3, 3, 1, 0}, {5, 5, 3, 3, 1, 1}, {7, 7, 3, 3, 2, 1}, {6, 6, 3, 3, 2, 1},
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
std::size_t count_far(const Tensor<T>& got, const Exact& ref, std::size_t terms) {
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

std::size_t out_size(std::size_t in, std::size_t k, int S, int P) { return (in + 2 * std::size_t(P) - k) / S + 1; }

}  // namespace

TEST_CASE_TEMPLATE("conv2d: values against a direct nested loop", T, float, double) {
  unsigned seed = 1;
  const int threads_before = num_threads();
  // One thread: every sample reuses one column buffer, so an element im2col
  // failed to write would show the previous sample's value.
  set_num_threads(1);
  for (const Case& k : kCases)
    for (bool bias : {true, false}) {
      CAPTURE(k.H); CAPTURE(k.W); CAPTURE(k.KH); CAPTURE(k.KW); CAPTURE(k.S); CAPTURE(k.P); CAPTURE(bias);
      const std::size_t N = 3, C = 3, FN = 4, OH = out_size(k.H, k.KH, k.S, k.P), OW = out_size(k.W, k.KW, k.S, k.P);
      auto x = random<T>({N, C, k.H, k.W}, seed++), W = random<T>({FN, C, k.KH, k.KW}, seed++);
      auto b = random<T>({FN}, seed++);
      auto y = F::conv2d(x, W, bias ? b : BasicVariable<T>(), k.S, k.P);
      REQUIRE(y.shape() == Shape{N, FN, OH, OW});
      Tensor<T> g = xt::zeros<T>({N, FN, OH, OW});
      const Reference r = reference(x.data(), W.data(), bias ? &b.data() : nullptr, g, k.S, k.P);
      CHECK(count_far(y.data(), r.y, r.terms) == 0);
    }
  set_num_threads(threads_before);
}

TEST_CASE_TEMPLATE("conv2d: a batch big enough for BLAS to block", T, float, double) {
  auto x = random<T>({5, 6, 14, 13}, 7), W = random<T>({16, 6, 3, 3}, 8), b = random<T>({16}, 9);
  auto g = random<T>({5, 16, 7, 7}, 10);
  auto y = F::conv2d(x, W, b, 2, 1);
  REQUIRE(y.shape() == Shape{5, 16, 7, 7});
  const Reference r = reference(x.data(), W.data(), &b.data(), g.data(), 2, 1);
  CHECK(count_far(y.data(), r.y, r.terms) == 0);
  CHECK(count_far(F::conv_transpose2d(g, W, 2, 1, {14, 13}).data(), r.gx, r.terms) == 0);
  CHECK(count_far(F::conv2d_grad_weight(x, g, {3, 3}, 2, 1).data(), r.gW, r.terms) == 0);
}

TEST_CASE_TEMPLATE("conv2d: backward, conv_transpose2d and conv2d_grad_weight against the definition", T, float,
                   double) {
  unsigned seed = 100;
  for (const Case& k : kCases) {
    CAPTURE(k.H); CAPTURE(k.W); CAPTURE(k.KH); CAPTURE(k.KW); CAPTURE(k.S); CAPTURE(k.P);
    const std::size_t N = 2, C = 3, FN = 4, OH = out_size(k.H, k.KH, k.S, k.P), OW = out_size(k.W, k.KW, k.S, k.P);
    auto x = random<T>({N, C, k.H, k.W}, seed++).requires_grad_();
    auto W = random<T>({FN, C, k.KH, k.KW}, seed++).requires_grad_();
    auto b = random<T>({FN}, seed++).requires_grad_();
    auto g = random<T>({N, FN, OH, OW}, seed++);
    typename BasicVariable<T>::BackwardOptions options;
    options.seed = g;
    F::conv2d(x, W, b, k.S, k.P).backward(options);
    const Reference r = reference(x.data(), W.data(), &b.data(), g.data(), k.S, k.P);
    CHECK(count_far(x.grad().data(), r.gx, r.terms) == 0);
    CHECK(count_far(W.grad().data(), r.gW, r.terms) == 0);
    CHECK(count_far(b.grad().data(), r.gb, r.terms) == 0);
    CHECK(count_far(F::conv_transpose2d(g, W, k.S, k.P, {k.H, k.W}).data(), r.gx, r.terms) == 0);
    CHECK(count_far(F::conv2d_grad_weight(x, g, {k.KH, k.KW}, k.S, k.P).data(), r.gW, r.terms) == 0);
  }
}

namespace {

// conv2d forward and the gradients of sum(g * y) by the definition, in double.
struct Direct {
  std::vector<double> y, gx, gW, gb;
};
Direct direct(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& b, const Tensor<double>& g,
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
// DeepConvNet's six 3x3 convolutions (BOOK.md) on 28x28 input, and odd ones:
// pad 0, a 7x7 input, an odd channel count.
const std::vector<Layer> kDeepLayers = {{1, 28, 16, 1},  {16, 28, 16, 1}, {16, 14, 32, 1}, {32, 14, 32, 2},
                                        {32, 8, 64, 1},  {64, 8, 64, 1},  {3, 9, 5, 0},    {7, 7, 9, 2}};

// conv2d in float32 on float64 data, forward and backward from seed g64.
struct Float32Run {
  Tensor<float> y, gx, gW, gb;
};
Float32Run float32_run(const Variable64& x64, const Variable64& w64, const Variable64& b64, const Variable64& g64,
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

}  // namespace

TEST_CASE("conv2d on DeepConvNet's layer shapes: float32 within 1e-4 of float64, forward and backward") {
  unsigned seed = 500;
  for (const Layer& l : kDeepLayers) {
    CAPTURE(l.C); CAPTURE(l.H); CAPTURE(l.FN); CAPTURE(l.P);
    const std::size_t OH = l.H + 2 * std::size_t(l.P) - 2;
    for (std::size_t N : {1u, 4u, 100u}) {
      CAPTURE(N);
      const Variable64 x64 = uniform({N, l.C, l.H, l.H}, -1, 1, seed++), w64 = uniform({l.FN, l.C, 3, 3}, -1, 1, seed++);
      const Variable64 b64 = uniform({l.FN}, -1, 1, seed++), g64 = uniform({N, l.FN, OH, OH}, -1, 1, seed++);
      const Float32Run r = float32_run(x64, w64, b64, g64, l.P);
      // The definition in double for small batches; for batch 100, zerograd's
      // float64 path (OpenBLAS dgemm), which the small batches check against it.
      if (N < 100) {
        const Direct d = direct(x64.data(), w64.data(), b64.data(), g64.data(), l.P);
        CHECK(relative_error(r.y, d.y) <= 1e-4);
        CHECK(relative_error(r.gx, d.gx) <= 1e-4);
        CHECK(relative_error(r.gW, d.gW) <= 1e-4);
        CHECK(relative_error(r.gb, d.gb) <= 1e-4);
        CHECK(relative_error(F::conv2d(x64, w64, b64, 1, l.P).data(), d.y) <= 1e-12);
      } else {
        auto xd = Variable64(x64.data()).requires_grad_(), wd = Variable64(w64.data()).requires_grad_();
        auto bd = Variable64(b64.data()).requires_grad_();
        Variable64::BackwardOptions options64;
        options64.seed = g64;
        const Variable64 yd = F::conv2d(xd, wd, bd, 1, l.P);
        yd.backward(options64);
        CHECK(relative_error(r.y, yd.data()) <= 1e-4);
        CHECK(relative_error(r.gx, xd.grad().data()) <= 1e-4);
        CHECK(relative_error(r.gW, wd.grad().data()) <= 1e-4);
        CHECK(relative_error(r.gb, bd.grad().data()) <= 1e-4);
      }
    }
  }
}

// Shapes the oneDNN path takes (16k channels, stride 1) but DeepConvNet does
// not have: rectangular and odd images, 1x1 and 5x5 kernels, pad 0 and 2.
TEST_CASE("conv2d with 16k channels on odd shapes: float32 within 1e-4 of float64, and repeatable") {
  struct Odd {
    std::size_t C, H, W, FN, K;
    int P;
  };
  unsigned seed = 900;
  for (const Odd& l : std::vector<Odd>{{16, 9, 7, 32, 3, 0}, {32, 5, 11, 16, 1, 0}, {16, 13, 13, 16, 5, 2},
                                       {48, 6, 6, 16, 3, 2}}) {
    CAPTURE(l.C); CAPTURE(l.H); CAPTURE(l.W); CAPTURE(l.FN); CAPTURE(l.K); CAPTURE(l.P);
    const std::size_t OH = l.H + 2 * std::size_t(l.P) - l.K + 1, OW = l.W + 2 * std::size_t(l.P) - l.K + 1;
    for (std::size_t N : {1u, 3u}) {
      CAPTURE(N);
      const Variable64 x64 = uniform({N, l.C, l.H, l.W}, -1, 1, seed++), w64 = uniform({l.FN, l.C, l.K, l.K}, -1, 1, seed++);
      const Variable64 b64 = uniform({l.FN}, -1, 1, seed++), g64 = uniform({N, l.FN, OH, OW}, -1, 1, seed++);
      const Direct d = direct(x64.data(), w64.data(), b64.data(), g64.data(), l.P);
      std::vector<Tensor<float>> first;
      for (int repeat = 0; repeat < 2; ++repeat) {
        const Float32Run r = float32_run(x64, w64, b64, g64, l.P);
        CHECK(relative_error(r.y, d.y) <= 1e-4);
        CHECK(relative_error(r.gx, d.gx) <= 1e-4);
        CHECK(relative_error(r.gW, d.gW) <= 1e-4);
        CHECK(relative_error(r.gb, d.gb) <= 1e-4);
        const std::vector<Tensor<float>> got{r.y, r.gx, r.gW, r.gb};
        if (repeat == 0) first = got;
        else
          for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == first[i]);  // same threads: bit for bit
      }
    }
  }
}

// oneDNN's primitives are cached per thread and shape, and the cache is
// emptied when full: a backward looks up two primitives, and emptying it
// between the two lookups freed the first (a use after free that ASan
// reports). Many shapes in a row cross that point several times.
TEST_CASE("conv2d through many shapes in a row: oneDNN's primitive cache never frees one in use") {
  unsigned seed = 950;
  for (std::size_t N = 1; N <= 45; ++N) {
    CAPTURE(N);
    const Variable64 x64 = uniform({N, 16, 4, 4}, -1, 1, seed++), w64 = uniform({16, 16, 3, 3}, -1, 1, seed++);
    const Variable64 b64 = uniform({16}, -1, 1, seed++), g64 = uniform({N, 16, 4, 4}, -1, 1, seed++);
    const Float32Run r = float32_run(x64, w64, b64, g64, 1);
    const Direct d = direct(x64.data(), w64.data(), b64.data(), g64.data(), 1);
    CHECK(relative_error(r.y, d.y) <= 1e-4);
    CHECK(relative_error(r.gx, d.gx) <= 1e-4);
    CHECK(relative_error(r.gW, d.gW) <= 1e-4);
    CHECK(relative_error(r.gb, d.gb) <= 1e-4);
  }
}

// Note [One pass over gy]: a plain backward gets a convolution's gradients
// from one oneDNN pass; under create_graph they come from three ops
// (conv_transpose2d, conv2d_grad_weight, sum). Both against float64, for
// every combination of the gradients wanted.
TEST_CASE("conv2d backward in one pass: the gradients of the three separate ops, whichever are wanted") {
  unsigned seed = 1300;
  for (const Layer& l : std::vector<Layer>{{16, 10, 32, 1}, {32, 9, 16, 2}, {16, 6, 16, 0}}) {
    CAPTURE(l.C); CAPTURE(l.H); CAPTURE(l.FN); CAPTURE(l.P);
    const std::size_t N = 3, OH = l.H + 2 * std::size_t(l.P) - 2;
    const Variable64 x64 = uniform({N, l.C, l.H, l.H}, -1, 1, seed++), w64 = uniform({l.FN, l.C, 3, 3}, -1, 1, seed++);
    const Variable64 b64 = uniform({l.FN}, -1, 1, seed++), g64 = uniform({N, l.FN, OH, OH}, -1, 1, seed++);
    const Direct d = direct(x64.data(), w64.data(), b64.data(), g64.data(), l.P);
    for (bool want_x : {true, false})
      for (int bias : {0, 1, 2}) {  // none, trained, frozen
        CAPTURE(want_x); CAPTURE(bias);
        std::vector<Tensor<float>> grads[2];
        for (bool create_graph : {false, true}) {
          Variable x(Tensor<float>(x64.data())), w(Tensor<float>(w64.data())), b(Tensor<float>(b64.data()));
          x.requires_grad_(want_x);
          w.requires_grad_();
          b.requires_grad_(bias == 1);
          Variable::BackwardOptions options;
          options.seed = Variable(Tensor<float>(g64.data()));
          options.create_graph = create_graph;
          const Variable y = F::conv2d(x, w, bias ? b : Variable(), 1, l.P);
          y.backward(options);
          CHECK(x.grad().defined() == want_x);
          CHECK(b.grad().defined() == (bias == 1));
          CHECK(relative_error(w.grad().data(), d.gW) <= 1e-4);
          if (want_x) CHECK(relative_error(x.grad().data(), d.gx) <= 1e-4);
          if (bias == 1) CHECK(relative_error(b.grad().data(), d.gb) <= 1e-4);
          for (Variable* v : {&x, &w, &b}) {
            if (v->grad().defined()) grads[create_graph].push_back(v->grad().data());
            v->cleargrad();  // a create_graph gradient holds its graph, which holds v: a cycle
          }
        }
        REQUIRE(grads[0].size() == grads[1].size());
        for (std::size_t i = 0; i < grads[0].size(); ++i) CHECK(relative_error(grads[0][i], grads[1][i]) <= 1e-5);
      }
  }
}

// Note [Conv2d with ReLU]: the fused op against conv2d then relu, in float32
// on oneDNN's path (16k channels; pad 2 padded by hand) and im2col's (3
// channels; stride 2), with and without a bias, plain and create_graph.
namespace {

// A fused op against the ops it replaces, in float32 on float64 data: y and
// the gradients of x, W and (with a bias) b for output gradient g64, each
// side's output made by `op` of its creator's name.
using ConvOp = std::function<Variable(const Variable& x, const Variable& w, const Variable& b)>;
struct Sides {
  std::vector<Tensor<float>> out[2];  // separate, fused: y, gx, gW[, gb]
  std::string creator[2], attributes[2];
};
Sides fused_and_separate(const ConvOp& separate, const ConvOp& fused, const Variable64& x64, const Variable64& w64,
                         const Variable64& b64, const Variable64& g64, bool bias, bool create_graph) {
  Sides s;
  for (bool f : {false, true}) {
    auto x = Variable(Tensor<float>(x64.data())).requires_grad_();
    auto w = Variable(Tensor<float>(w64.data())).requires_grad_();
    auto b = Variable(Tensor<float>(b64.data())).requires_grad_();
    const Variable y = (f ? fused : separate)(x, w, bias ? b : Variable());
    s.creator[f] = y.creator()->name();
    s.attributes[f] = y.creator()->attributes();
    Variable::BackwardOptions options;
    options.seed = Variable(Tensor<float>(g64.data()));
    options.create_graph = create_graph;
    y.backward(options);
    s.out[f] = {y.data(), x.grad().data(), w.grad().data()};
    if (bias) s.out[f].push_back(b.grad().data());
    for (Variable* v : {&x, &w, &b}) v->cleargrad();  // create_graph: a gradient's graph holds v
  }
  return s;
}

// The two sides agree exactly: the fused op does the same arithmetic, only
// in fewer passes. Some outputs are 0 (clipped by ReLU), some positive:
// ReLU's switch, or the pooling's bytes, are exercised both ways.
void check_agree(const Sides& s) {
  REQUIRE(s.out[0].size() == s.out[1].size());
  CHECK(xt::any(xt::equal(s.out[1][0], 0.f)));
  CHECK(xt::any(xt::greater(s.out[1][0], 0.f)));
  for (std::size_t i = 0; i < s.out[0].size(); ++i) {
    CAPTURE(i);  // y, gx, gW, gb
    CHECK(s.out[1][i] == s.out[0][i]);
  }
}

// y's graph, retained, runs backward a second time and gives w the same
// gradient: what the fused ops keep for backward survives the first pass.
void check_backward_twice(const Variable& y, Variable& w) {
  Variable::BackwardOptions keep;
  keep.retain_graph = true;
  y.backward(keep);
  const Tensor<float> first = w.grad().data();
  w.cleargrad();
  y.backward();
  CHECK(xt::all(xt::equal(w.grad().data(), first)));
}

}  // namespace

TEST_CASE("conv2d_relu: the values and gradients of conv2d then relu") {
  struct FusedCase {
    std::size_t C, H, FN;
    int S, P;
  };
  unsigned seed = 1400;
  for (const FusedCase& l : std::vector<FusedCase>{{16, 10, 32, 1, 1}, {32, 9, 16, 1, 2}, {3, 7, 5, 1, 1}, {3, 8, 4, 2, 1}}) {
    CAPTURE(l.C); CAPTURE(l.H); CAPTURE(l.FN); CAPTURE(l.S); CAPTURE(l.P);
    const std::size_t N = 3, OH = (l.H + 2 * std::size_t(l.P) - 3) / std::size_t(l.S) + 1;
    const Variable64 x64 = uniform({N, l.C, l.H, l.H}, -1, 1, seed++), w64 = uniform({l.FN, l.C, 3, 3}, -1, 1, seed++);
    const Variable64 b64 = uniform({l.FN}, -1, 1, seed++), g64 = uniform({N, l.FN, OH, OH}, -1, 1, seed++);
    for (bool bias : {true, false})
      for (bool create_graph : {false, true}) {
        CAPTURE(bias); CAPTURE(create_graph);
        const int S = l.S, P = l.P;
        const Sides s = fused_and_separate(
            [=](const Variable& x, const Variable& w, const Variable& b) { return zg::relu(F::conv2d(x, w, b, S, P)); },
            [=](const Variable& x, const Variable& w, const Variable& b) { return F::conv2d_relu(x, w, b, S, P); },
            x64, w64, b64, g64, bias, create_graph);
        CHECK(s.creator[0] == "ReLU");
        CHECK(s.creator[1] == "Conv2dReLU");
        check_agree(s);
      }
  }
}

TEST_CASE("conv2d_relu: NaN passes through as relu lets it, a retained graph runs backward twice") {
  for (std::size_t C : {16u, 2u}) {  // oneDNN's path, im2col's
    CAPTURE(C);
    Tensor<float> xs = uniform({2, C, 6, 6}, -1, 1, 1500).data();
    xs(1, 0, 2, 3) = std::numeric_limits<float>::quiet_NaN();
    const Variable x(xs);
    auto w = Variable(Tensor<float>(uniform({16, C, 3, 3}, -1, 1, 1501).data())).requires_grad_();
    const Variable fused = F::conv2d_relu(x, w, Variable(), 1, 1);
    const Variable separate = zg::relu(F::conv2d(x, w, Variable(), 1, 1));
    CHECK(xt::any(xt::isnan(fused.data())));
    CHECK(xt::all(xt::equal(xt::isnan(fused.data()), xt::isnan(separate.data()))));

    check_backward_twice(F::conv2d_relu(Variable(Tensor<float>(uniform({2, C, 6, 6}, -1, 1, 1502).data())), w,
                                        Variable(), 1, 1),
                         w);
  }
}

TEST_CASE("Sequential runs Conv2d then ReLU as one Conv2dReLU, and every layer apart with fuse_conv_relu(false)") {
  // A Conv2d subclass keeps its own forward: it is never fused.
  struct Doubled : nn::Conv2d {
    using nn::Conv2d::Conv2d;
    Variable forward(const Variable& x) override { return nn::Conv2d::forward(x) * 2.0f; }
  };
  zg::manual_seed(3);
  nn::Sequential net;
  net.add("conv1", std::make_shared<nn::Conv2d>(16, 16, 3, 1, 1));
  net.add("relu1", std::make_shared<nn::ReLU>());
  net.add("conv2", std::make_shared<Doubled>(16, 16, 3, 1, 1));
  net.add("relu2", std::make_shared<nn::ReLU>());
  net.add("conv3", std::make_shared<nn::Conv2d>(16, 4, 3, 1, 1));
  net.add("relu3", std::make_shared<nn::ReLU>());
  CHECK(net.fuses_conv_relu());
  const Variable x(Tensor<float>(uniform({2, 16, 6, 6}, -1, 1, 1600).data()));
  // The creators, from the output back: which ops ran.
  const auto ops = [&](const Variable& y) {
    std::vector<std::string> names;
    for (auto f = y.creator(); f; f = f->input_creator(0)) names.insert(names.begin(), f->name());
    return names;
  };
  const Variable fused = net(x);
  CHECK(ops(fused) == std::vector<std::string>{"Conv2dReLU", "Conv2d", "MulConst", "ReLU", "Conv2dReLU"});
  zg::sum(fused).backward();
  std::vector<Tensor<float>> grads;
  for (const auto& [name, p] : net.named_parameters()) grads.push_back(p.grad().data());
  net.zero_grad();

  net.fuse_conv_relu(false);
  const Variable separate = net(x);
  CHECK(ops(separate) ==
        std::vector<std::string>{"Conv2d", "ReLU", "Conv2d", "MulConst", "ReLU", "Conv2d", "ReLU"});
  CHECK(relative_error(fused.data(), separate.data()) <= 1e-6);
  zg::sum(separate).backward();
  std::size_t i = 0;
  for (const auto& named : net.named_parameters()) {
    CAPTURE(named.first);  // not a structured binding: clang 14 cannot capture one (C++17)
    CHECK(relative_error(named.second.grad().data(), grads[i++]) <= 1e-5);
  }
  // Converting keeps the setting.
  CHECK_FALSE(std::static_pointer_cast<nn::BasicSequential<double>>(net.to<double>())->fuses_conv_relu());
}

namespace {
ConvOp separate_block(int S, int P) {
  return [=](const Variable& x, const Variable& w, const Variable& b) {
    return F::max_pool2d(zg::relu(F::conv2d(x, w, b, S, P)), 2);
  };
}
ConvOp fused_block(int S, int P) {
  return [=](const Variable& x, const Variable& w, const Variable& b) { return F::conv2d_relu_pool(x, w, b, S, P); };
}
}  // namespace

TEST_CASE("conv2d_relu_pool: the values and gradients of max_pool2d(relu(conv2d)), on every path") {
  struct FusedCase {
    std::size_t C, H, FN;
    int S, P;
  };
  unsigned seed = 1700;
  // oneDNN with even and odd outputs (the last row and column in no window),
  // padded by hand (11x11 out), im2col with rows of 3 windows (one at a
  // time), of 8 (eight at once), of 10 and of 9 with an odd last column
  // (eight at once, then the last eight overlapping), im2col with stride 2.
  for (const FusedCase& l : std::vector<FusedCase>{{16, 10, 32, 1, 1},
                                                   {16, 9, 16, 1, 1},
                                                   {32, 9, 16, 1, 2},
                                                   {3, 7, 5, 1, 1},
                                                   {3, 16, 4, 1, 1},
                                                   {3, 20, 4, 1, 1},
                                                   {3, 19, 4, 1, 1},
                                                   {3, 8, 4, 2, 1}}) {
    CAPTURE(l.C); CAPTURE(l.H); CAPTURE(l.FN); CAPTURE(l.S); CAPTURE(l.P);
    const std::size_t N = 3, OH = (l.H + 2 * std::size_t(l.P) - 3) / std::size_t(l.S) + 1;
    const Variable64 x64 = uniform({N, l.C, l.H, l.H}, -1, 1, seed++), w64 = uniform({l.FN, l.C, 3, 3}, -1, 1, seed++);
    // A bias leaning negative, so that small layers have windows with no positive value too.
    const Variable64 b64 = uniform({l.FN}, -1.5, 0.5, seed++), g64 = uniform({N, l.FN, OH / 2, OH / 2}, -1, 1, seed++);
    for (bool bias : {true, false})
      for (bool create_graph : {false, true}) {
        CAPTURE(bias); CAPTURE(create_graph);
        const Sides s = fused_and_separate(separate_block(l.S, l.P), fused_block(l.S, l.P), x64, w64, b64, g64, bias,
                                           create_graph);
        CHECK(s.creator[0] == "MaxPool2d");
        CHECK(s.creator[1] == "Conv2dReLUMaxPool");
#ifdef ZG_TEST_WITH_DNNL
        // Where oneDNN convolves, the output is pooled in its blocked layout
        // (Note [Pooling in the reorders]), not by the plain fallback.
        if (l.C % 16 == 0 && l.FN % 16 == 0 && l.S == 1)
          CHECK(s.attributes[1].find("-channel blocks") != std::string::npos);
#endif
        check_agree(s);
      }
  }
}

// DeepConvNet's three conv - relu - pool blocks at batch 100, where the
// pooling's loops split (n, channel block) pairs over threads.
TEST_CASE("conv2d_relu_pool on DeepConvNet's pooled layers at batch 100: the three ops' results, repeatable") {
  unsigned seed = 1750;
  const int before = num_threads();
  for (const Layer& l : std::vector<Layer>{{16, 28, 16, 1}, {32, 14, 32, 2}, {64, 8, 64, 1}}) {
    CAPTURE(l.C); CAPTURE(l.H); CAPTURE(l.FN); CAPTURE(l.P);
    const std::size_t N = 100, OH = l.H + 2 * std::size_t(l.P) - 2;
    const Variable64 x64 = uniform({N, l.C, l.H, l.H}, -1, 1, seed++), w64 = uniform({l.FN, l.C, 3, 3}, -0.3, 0.3, seed++);
    const Variable64 b64 = uniform({l.FN}, -0.5, 0.5, seed++), g64 = uniform({N, l.FN, OH / 2, OH / 2}, -1, 1, seed++);
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      set_num_threads(threads);
      const Sides s = fused_and_separate(separate_block(1, l.P), fused_block(1, l.P), x64, w64, b64, g64, true, false);
      check_agree(s);
      const Sides again = fused_and_separate(separate_block(1, l.P), fused_block(1, l.P), x64, w64, b64, g64, true, false);
      for (std::size_t i = 0; i < 4; ++i) CHECK(again.out[1][i] == s.out[1][i]);  // same threads: bit for bit
    }
  }
  set_num_threads(before);
}

// Integer data: many windows hold their maximum twice or more, and the
// first in row-major order must win, as in max_pool2d. A constant image
// ties every window.
TEST_CASE("conv2d_relu_pool: ties go to the first maximum of each window, as in max_pool2d") {
  for (std::size_t C : {16u, 3u}) {  // oneDNN's path, im2col's
    CAPTURE(C);
    for (bool constant : {false, true}) {
      CAPTURE(constant);
      const std::size_t N = 2, H = 18;
      Tensor<double> x = xt::round(uniform({N, C, H, H}, -1.4, 1.4, 1850).data());
      Tensor<double> w = xt::round(uniform({16, C, 3, 3}, -1.4, 1.4, 1851).data());
      if (constant) {
        x.fill(1.0);
        w.fill(0.25);
      }
      const Variable64 b = Variable64(Tensor<double>(xt::zeros<double>({std::size_t(16)})));
      const Variable64 g = uniform({N, 16, (H - 2) / 2, (H - 2) / 2}, -1, 1, 1852);  // 16x16 out, pooled 8x8
      const Sides s = fused_and_separate(separate_block(1, 0), fused_block(1, 0), Variable64(x), Variable64(w), b, g,
                                         false, false);
      const Tensor<float>& y = s.out[1][0];
      // Ties: some window holds its positive maximum more than once.
      const Tensor<float> z = zg::relu(F::conv2d(Variable(Tensor<float>(x)), Variable(Tensor<float>(w)), Variable(), 1, 0)).data();
      std::size_t tied = 0;
      for (std::size_t i = 0; i < y.size(); ++i) {
        const std::size_t n = i / (16 * 64), c = i / 64 % 16, ph = i / 8 % 8, pw = i % 8;
        int hits = 0;
        for (std::size_t k = 0; k < 4; ++k) hits += z(n, c, 2 * ph + k / 2, 2 * pw + k % 2) == y.data()[i];
        if (y.data()[i] > 0 && hits > 1) ++tied;
      }
      CHECK(tied >= (constant ? y.size() : 5));
      CHECK(s.out[1][0] == s.out[0][0]);
      CHECK(s.out[1][1] == s.out[0][1]);
      CHECK(s.out[1][2] == s.out[0][2]);
    }
  }
}

TEST_CASE("conv2d_relu_pool: NaN wins its window as in max_pool2d, no-grad forward, a retained graph twice") {
  for (std::size_t C : {16u, 2u}) {  // oneDNN's path, im2col's
    CAPTURE(C);
    Tensor<float> xs = uniform({2, C, 18, 18}, -1, 1, 1800).data();  // rows of 9 windows
    xs(1, 0, 2, 3) = std::numeric_limits<float>::quiet_NaN();
    xs(0, 1, 5, 16) = std::numeric_limits<float>::quiet_NaN();
    const Variable x(xs);
    auto w = Variable(Tensor<float>(uniform({16, C, 3, 3}, -1, 1, 1801).data())).requires_grad_();
    const Variable fused = F::conv2d_relu_pool(x, w, Variable(), 1, 1);
    const Variable separate = F::max_pool2d(zg::relu(F::conv2d(x, w, Variable(), 1, 1)), 2);
    CHECK(xt::any(xt::isnan(fused.data())));
    CHECK(xt::all(xt::equal(xt::isnan(fused.data()), xt::isnan(separate.data()))));
    // The backward with NaN about: NaN in the same gradients as the three ops give.
    zg::sum(fused).backward();
    const Tensor<float> fused_gw = w.grad().data();
    w.cleargrad();
    zg::sum(separate).backward();
    CHECK(xt::any(xt::isnan(fused_gw)));
    CHECK(xt::all(xt::equal(xt::isnan(fused_gw), xt::isnan(w.grad().data()))));
    w.cleargrad();
    {
      NoGradGuard no_grad;  // nothing recorded, no position bytes made
      const Variable plain = F::conv2d_relu_pool(x, w, Variable(), 1, 1);
      CHECK_FALSE(plain.creator());
      CHECK(xt::all(xt::equal(xt::isnan(plain.data()), xt::isnan(fused.data()))));
      CHECK(relative_error(Tensor<float>(xt::nan_to_num(plain.data())), Tensor<float>(xt::nan_to_num(fused.data()))) == 0);
    }

    check_backward_twice(F::conv2d_relu_pool(Variable(Tensor<float>(uniform({2, C, 6, 6}, -1, 1, 1802).data())), w,
                                             Variable(), 1, 1),
                         w);
  }
}

TEST_CASE("Sequential runs Conv2d, ReLU and a 2x2 MaxPool2d as one Conv2dReLUMaxPool, other poolings apart") {
  zg::manual_seed(4);
  nn::Sequential net;
  net.add("conv1", std::make_shared<nn::Conv2d>(16, 16, 3, 1, 1));
  net.add("relu1", std::make_shared<nn::ReLU>());
  net.add("pool1", std::make_shared<nn::MaxPool2d>(2));
  net.add("conv2", std::make_shared<nn::Conv2d>(16, 16, 3, 1, 1));
  net.add("relu2", std::make_shared<nn::ReLU>());
  net.add("pool2", std::make_shared<nn::MaxPool2d>(2, 1));  // stride 1: not fused
  net.add("conv3", std::make_shared<nn::Conv2d>(16, 4, 3, 1, 1));
  net.add("relu3", std::make_shared<nn::ReLU>());
  net.add("pool3", std::make_shared<nn::MaxPool2d>(2));
  const Variable x(Tensor<float>(uniform({2, 16, 12, 12}, -1, 1, 1900).data()));
  const auto ops = [&](const Variable& y) {
    std::vector<std::string> names;
    for (auto f = y.creator(); f; f = f->input_creator(0)) names.insert(names.begin(), f->name());
    return names;
  };
  const Variable fused = net(x);
  CHECK(ops(fused) == std::vector<std::string>{"Conv2dReLUMaxPool", "Conv2dReLU", "MaxPool2d", "Conv2dReLUMaxPool"});
  zg::sum(fused).backward();
  std::vector<Tensor<float>> grads;
  for (const auto& [name, p] : net.named_parameters()) grads.push_back(p.grad().data());
  net.zero_grad();

  net.fuse_conv_relu(false);
  const Variable separate = net(x);
  CHECK(ops(separate) == std::vector<std::string>{"Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
                                                  "Conv2d", "ReLU", "MaxPool2d"});
  CHECK(relative_error(fused.data(), separate.data()) <= 1e-6);
  zg::sum(separate).backward();
  std::size_t i = 0;
  for (const auto& named : net.named_parameters()) {
    CAPTURE(named.first);
    CHECK(relative_error(named.second.grad().data(), grads[i++]) <= 1e-5);
  }
}

TEST_CASE("conv_transpose2d: the default output size is the smallest that convolves back") {
  auto g = random<float>({2, 4, 3, 3}, 1), W = random<float>({4, 3, 3, 3}, 2);
  // (3 - 1) * 2 + 3 - 2 * 1 = 5; 6 also convolves to 3 and must be asked for.
  CHECK(F::conv_transpose2d(g, W, 2, 1).shape() == Shape{2, 3, 5, 5});
  CHECK(F::conv_transpose2d(g, W, 2, 1, {6, 5}).shape() == Shape{2, 3, 6, 5});
  CHECK(F::conv_transpose2d(g, W).shape() == Shape{2, 3, 5, 5});
  const auto y = F::conv_transpose2d(g, W, 2, 1, {6, 5});
  CHECK(F::conv2d(y, W, Variable(), 2, 1).shape() == g.shape());
}

TEST_CASE("conv2d: a data batch gets no gradient, the bias gets the sum of gy over (n, oh, ow)") {
  auto x = random<float>({2, 3, 5, 5}, 1), W = random<float>({4, 3, 3, 3}, 2).requires_grad_();
  auto b = random<float>({4}, 3).requires_grad_();
  auto g = random<float>({2, 4, 3, 3}, 4);
  Variable::BackwardOptions options;
  options.seed = g;
  F::conv2d(x, W, b).backward(options);
  CHECK_FALSE(x.grad().defined());
  Tensor<float> gb = xt::sum(g.data(), {0, 2, 3}, xt::evaluation_strategy::immediate);
  CHECK(xt::allclose(b.grad().data(), gb));
  CHECK(W.grad().shape() == W.shape());
}

TEST_CASE("max_pool2d: the book's reference, 2x2 / stride 2 on arange(32)") {
  auto x = arange({1, 2, 4, 4}).requires_grad_();
  auto y = F::max_pool2d(x, 2);
  const Tensor<float> expected = {{{{5, 7}, {13, 15}}, {{21, 23}, {29, 31}}}};
  CHECK(y.data() == expected);
  CHECK(F::max_pool2d(x, 2, 2, 0).data() == expected);
  y.backward();
  // Each window's maximum is its bottom-right element.
  for (std::size_t i = 0; i < 32; ++i) {
    CAPTURE(i);
    const std::size_t h = (i / 4) % 4, w = i % 4;
    CHECK(x.grad().data().data()[i] == ((h % 2 == 1 && w % 2 == 1) ? 1.f : 0.f));
  }
}

TEST_CASE("max_pool2d: the gradient goes to the first maximum of each window, row-major") {
  auto same = filled({1, 1, 2, 2}, {3, 3, 3, 3}).requires_grad_();
  F::max_pool2d(same, 2).backward();
  CHECK(same.grad().data() == Tensor<float>{{{{1, 0}, {0, 0}}}});

  // Overlapping 2x2 windows, stride 1: maxima at (0,1), (0,1), (1,0), (1,2).
  auto x = filled({1, 1, 3, 3}, {1, 5, 5, 5, 2, 5, 0, 5, 1}).requires_grad_();
  auto y = F::max_pool2d(x, 2, 1);
  CHECK(y.data() == Tensor<float>{{{{5, 5}, {5, 5}}}});
  y.backward();
  CHECK(x.grad().data() == Tensor<float>{{{{0, 2, 0}, {1, 0, 1}, {0, 0, 0}}}});
}

TEST_CASE("max_pool2d: padding counts as -infinity, NaN propagates") {
  // pad 1: each window holds one real element, which must win over the padding even though it is negative.
  auto x = filled({1, 1, 2, 2}, {-11, -12, -13, -14}).requires_grad_();
  auto y = F::max_pool2d(x, 2, 2, 1);
  CHECK(y.data() == x.data());
  y.backward();
  CHECK(x.grad().data() == Tensor<float>{{{{1, 1}, {1, 1}}}});

  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(F::max_pool2d(filled({1, 1, 2, 2}, {1, nan, 3, 2}), 2).item()));
  CHECK(std::isnan(F::max_pool2d(filled({1, 1, 2, 2}, {nan, 1, 3, 2}), 2).item()));
}

TEST_CASE("max_pool2d 2x2: every plane width against the rule, with ties and NaN") {
  // Rows of 8 windows or more and narrower planes take different paths;
  // odd sizes leave a last row or column out; small integers make ties
  // common, and a few NaNs must each win once.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t w : {4, 6, 7, 8, 10, 12, 14, 15, 16, 18, 19, 26, 27, 34}) {
    const std::size_t h = w + 1;
    CAPTURE(w);
    const Shape shape{3, 5, h, w};
    Tensor<float> t = Tensor<float>::from_shape(shape);
    std::mt19937 gen{static_cast<unsigned>(w)};
    for (float& v : t) v = float(gen() % 4);
    for (std::size_t i = 7; i < t.size(); i += 97) t.data()[i] = nan;
    Variable x(t);
    x.requires_grad_();
    Variable y = F::max_pool2d(x, 2);
    y.backward();
    const std::size_t oh = h / 2, ow = w / 2, planes = 15;
    Tensor<float> want_grad = xt::zeros<float>(shape);
    for (std::size_t p = 0; p < planes; ++p)
      for (std::size_t i = 0; i < oh; ++i)
        for (std::size_t j = 0; j < ow; ++j) {
          const float* xp = t.data() + p * h * w;
          const std::size_t at[4] = {2 * i * w + 2 * j, 2 * i * w + 2 * j + 1, (2 * i + 1) * w + 2 * j,
                                     (2 * i + 1) * w + 2 * j + 1};
          std::size_t best = at[0];
          for (int k = 1; k < 4; ++k)
            if (xp[at[k]] > xp[best] || (std::isnan(xp[at[k]]) && !std::isnan(xp[best]))) best = at[k];
          const float got = y.data().data()[(p * oh + i) * ow + j];
          CHECK((got == xp[best] || (std::isnan(got) && std::isnan(xp[best]))));
          want_grad.data()[p * h * w + best] = 1;
        }
    CHECK(x.grad().data() == want_grad);
  }
}

TEST_CASE("avg_pool2d: values, zero padding in the average, backward spreads gy / k^2") {
  CHECK(F::avg_pool2d(arange({1, 1, 4, 4}), 2).data() == Tensor<float>{{{{2.5, 4.5}, {10.5, 12.5}}}});
  // Padding counts as zeros: one real element of four per window.
  CHECK(xt::allclose(F::avg_pool2d(filled({1, 1, 2, 2}, {1, 1, 1, 1}), 2, 2, 1).data(),
                     Tensor<float>{{{{0.25, 0.25}, {0.25, 0.25}}}}));
  auto ones = Variable(Tensor<float>(xt::ones<float>({1, 1, 3, 3})));
  const float c = 4.f / 9, e = 6.f / 9;
  CHECK(xt::allclose(F::avg_pool2d(ones, 3, 1, 1).data(), Tensor<float>{{{{c, e, c}, {e, 1, e}, {c, e, c}}}}));

  auto x = arange({1, 1, 4, 4}).requires_grad_();
  F::avg_pool2d(x, 2, 1).backward();
  CHECK(xt::allclose(x.grad().data(), Tensor<float>{{{{0.25, 0.5, 0.5, 0.25},
                                                        {0.5, 1.0, 1.0, 0.5},
                                                        {0.5, 1.0, 1.0, 0.5},
                                                        {0.25, 0.5, 0.5, 0.25}}}}));
}

// Gradcheck, float64

struct GradCase {
  Shape x, w;
  int S, P;
};
const std::vector<GradCase> kGradCases = {
    {{2, 3, 5, 5}, {4, 3, 3, 3}, 1, 0}, {{2, 3, 5, 5}, {4, 3, 3, 3}, 1, 1}, {{2, 3, 5, 5}, {4, 3, 3, 3}, 2, 1},
    {{2, 3, 6, 6}, {4, 3, 3, 3}, 2, 0}, {{1, 2, 5, 4}, {3, 2, 3, 2}, 2, 1}, {{2, 2, 4, 4}, {2, 2, 1, 1}, 1, 0}};

ZG_GRADCHECK_CASE("Conv2d") {
  unsigned seed = 1000;
  for (const GradCase& k : kGradCases) {
    CAPTURE(shape_str(k.x)); CAPTURE(shape_str(k.w)); CAPTURE(k.S); CAPTURE(k.P);
    const int S = k.S, P = k.P;
    V xs = {uniform(k.x, 0.5, 2.0, seed++, true), uniform(k.w, 0.5, 2.0, seed++, true),
            uniform({k.w[0]}, 0.5, 2.0, seed++, true)};
    V no_bias = {xs[0], xs[1]};
    CHECK_GRADCHECK([=](const V& v) { return F::conv2d(v[0], v[1], v[2], S, P); }, xs);
    CHECK_GRADCHECK([=](const V& v) { return F::conv2d(v[0], v[1], Variable64(), S, P); }, no_bias);
    CHECK_GRADGRADCHECK([=](const V& v) { return zg::sum(zg::square(F::conv2d(v[0], v[1], v[2], S, P))); }, xs);
  }
}

// Gradcheck and gradgradcheck of a fused op f(x, W, b, stride, pad) on
// every kGradCases shape, with and without bias, on inputs redrawn (up to
// `draws` times) until far(conv2d(x, W, b)) holds: the pre-activations are
// far enough from the op's kinks that the gradcheck's steps never cross one.
template <class Op, class Far>
void gradcheck_away_from_kinks(unsigned seed, int draws, Op op, Far far) {
  for (const GradCase& k : kGradCases) {
    CAPTURE(shape_str(k.x)); CAPTURE(shape_str(k.w)); CAPTURE(k.S); CAPTURE(k.P);
    const int S = k.S, P = k.P;
    for (bool bias : {true, false}) {
      CAPTURE(bias);
      V xs;
      for (int draw = 0;; ++draw) {
        REQUIRE(draw < draws);
        xs = {uniform(k.x, -1.0, 1.0, seed++, true), uniform(k.w, -1.0, 1.0, seed++, true)};
        if (bias) xs.push_back(uniform({k.w[0]}, -0.5, 0.5, seed++, true));
        if (far(F::conv2d(xs[0], xs[1], bias ? xs[2] : Variable64(), S, P).data())) break;
      }
      const auto f = [=](const V& v) { return op(v[0], v[1], v.size() > 2 ? v[2] : Variable64(), S, P); };
      CHECK_GRADCHECK(f, xs);
      CHECK_GRADGRADCHECK([=](const V& v) { return zg::sum(zg::square(f(v))); }, xs);
    }
  }
}

// Every pre-activation at least 0.05 from ReLU's kink, and both signs occur.
ZG_GRADCHECK_CASE("Conv2dReLU") {
  gradcheck_away_from_kinks(
      8000, 500,
      [](const Variable64& x, const Variable64& w, const Variable64& b, int S, int P) {
        return F::conv2d_relu(x, w, b, S, P);
      },
      [](const Tensor<double>& z) {
        return xt::amin(xt::abs(z))() >= 0.05 && xt::any(xt::less(z, 0.0)) && xt::any(xt::greater(z, 0.0));
      });
}

// Every pooling window far from a kink: its maximum pre-activation at most
// -0.05 (no gradient), or at least 0.05 and 0.05 above the window's second
// largest. Both kinds of window occur.
ZG_GRADCHECK_CASE("Conv2dReLUMaxPool") {
  const auto far_from_kinks = [](const Tensor<double>& z) {
    const std::size_t PH = z.shape()[2] / 2, PW = z.shape()[3] / 2;
    bool dead = false, live = false;
    for (std::size_t n = 0; n < z.shape()[0]; ++n)
      for (std::size_t c = 0; c < z.shape()[1]; ++c)
        for (std::size_t i = 0; i < PH; ++i)
          for (std::size_t j = 0; j < PW; ++j) {
            std::array<double, 4> v = {z(n, c, 2 * i, 2 * j), z(n, c, 2 * i, 2 * j + 1), z(n, c, 2 * i + 1, 2 * j),
                                       z(n, c, 2 * i + 1, 2 * j + 1)};
            std::sort(v.begin(), v.end());
            if (v[3] <= -0.05) dead = true;
            else if (v[3] >= 0.05 && v[3] - v[2] >= 0.05) live = true;
            else return false;
          }
    return dead && live;
  };
  gradcheck_away_from_kinks(
      9000, 2000,
      [](const Variable64& x, const Variable64& w, const Variable64& b, int S, int P) {
        return F::conv2d_relu_pool(x, w, b, S, P);
      },
      far_from_kinks);
}

ZG_GRADCHECK_CASE("ConvTranspose2d") {
  unsigned seed = 2000;
  for (const GradCase& k : kGradCases) {
    CAPTURE(shape_str(k.x)); CAPTURE(shape_str(k.w)); CAPTURE(k.S); CAPTURE(k.P);
    const int S = k.S, P = k.P;
    const Shape out = {k.x[2], k.x[3]};
    const Shape sg = {k.x[0], k.w[0], out_size(k.x[2], k.w[2], S, P), out_size(k.x[3], k.w[3], S, P)};
    V xs = {uniform(sg, 0.5, 2.0, seed++, true), uniform(k.w, 0.5, 2.0, seed++, true)};
    CHECK_GRADCHECK([=](const V& v) { return F::conv_transpose2d(v[0], v[1], S, P, out); }, xs);
    CHECK_GRADGRADCHECK([=](const V& v) { return zg::sum(zg::square(F::conv_transpose2d(v[0], v[1], S, P, out))); },
                        xs);
  }
}

ZG_GRADCHECK_CASE("Conv2dGradW") {
  unsigned seed = 3000;
  for (const GradCase& k : kGradCases) {
    CAPTURE(shape_str(k.x)); CAPTURE(shape_str(k.w)); CAPTURE(k.S); CAPTURE(k.P);
    const int S = k.S, P = k.P;
    const Shape kernel = {k.w[2], k.w[3]};
    const Shape sg = {k.x[0], k.w[0], out_size(k.x[2], k.w[2], S, P), out_size(k.x[3], k.w[3], S, P)};
    V xs = {uniform(k.x, 0.5, 2.0, seed++, true), uniform(sg, 0.5, 2.0, seed++, true)};
    CHECK_GRADCHECK([=](const V& v) { return F::conv2d_grad_weight(v[0], v[1], kernel, S, P); }, xs);
    CHECK_GRADGRADCHECK(
        [=](const V& v) { return zg::sum(zg::square(F::conv2d_grad_weight(v[0], v[1], kernel, S, P))); }, xs);
  }
}

struct PoolCase {
  Shape x;
  int kernel, S, P;
};
// Non-overlapping, floor (5 -> 2), overlapping, padded.
const std::vector<PoolCase> kPoolCases = {{{2, 3, 4, 4}, 2, 2, 0}, {{2, 3, 5, 5}, 2, 2, 0}, {{1, 2, 5, 5}, 2, 1, 0},
                                          {{2, 3, 5, 5}, 3, 2, 1}, {{1, 2, 4, 5}, 2, 2, 1}};

// x -> d sum(w * pool(x)) / d x at a fixed x, recorded with create_graph: the
// pooling's grad Function applied to w, whose backward is checked here.
template <class Pool>
std::vector<Variable64> pool_grad(const Tensor<double>& x, const Variable64& w, Pool pool) {
  EnableGradGuard record;
  Variable64 leaf(x);
  leaf.requires_grad_();
  Variable64::BackwardOptions options;
  options.create_graph = true;
  zg::sum(pool(leaf) * w).backward(options);
  // w's gradient, pool(leaf), is a graph reaching leaf, whose gradient reaches
  // w: drop it, or the two nodes keep each other alive.
  w.cleargrad();
  return {leaf.grad()};
}

ZG_GRADCHECK_CASE("MaxPool2d") {
  unsigned seed = 4000;
  for (const PoolCase& k : kPoolCases) {
    CAPTURE(shape_str(k.x)); CAPTURE(k.kernel); CAPTURE(k.S); CAPTURE(k.P);
    const int K = k.kernel, S = k.S, P = k.P;
    V xs = {permuted(k.x, seed++)};
    CHECK_GRADCHECK([=](const V& v) { return F::max_pool2d(v[0], K, S, P); }, xs);
    CHECK_GRADGRADCHECK([=](const V& v) { return zg::sum(zg::square(F::max_pool2d(v[0], K, S, P))); }, xs);
  }
}

ZG_GRADCHECK_CASE("MaxPool2dGrad") {
  unsigned seed = 5000;
  for (const PoolCase& k : kPoolCases) {
    CAPTURE(shape_str(k.x)); CAPTURE(k.kernel); CAPTURE(k.S); CAPTURE(k.P);
    const int K = k.kernel, S = k.S, P = k.P;
    const Tensor<double> x = permuted(k.x, seed++).data();
    const Shape sy = F::max_pool2d(Variable64(x), K, S, P).shape();
    const auto pool = [=](const Variable64& v) { return F::max_pool2d(v, K, S, P); };
    const V gy = {uniform(sy, 0.5, 2.0, seed++, true)};
    CHECK_GRADCHECK([=](const V& v) { return pool_grad(x, v[0], pool); }, gy);
    // Linear in gy: its create_graph backward is checked through a square.
    CHECK_GRADGRADCHECK([=](const V& v) { return zg::sum(zg::square(pool_grad(x, v[0], pool)[0])); }, gy);
  }
}

ZG_GRADCHECK_CASE("AvgPool2d") {
  unsigned seed = 6000;
  for (const PoolCase& k : kPoolCases) {
    CAPTURE(shape_str(k.x)); CAPTURE(k.kernel); CAPTURE(k.S); CAPTURE(k.P);
    const int K = k.kernel, S = k.S, P = k.P;
    V xs = {uniform(k.x, 0.5, 2.0, seed++, true)};
    CHECK_GRADCHECK([=](const V& v) { return F::avg_pool2d(v[0], K, S, P); }, xs);
    CHECK_GRADGRADCHECK([=](const V& v) { return zg::sum(zg::square(F::avg_pool2d(v[0], K, S, P))); }, xs);
  }
}

ZG_GRADCHECK_CASE("AvgPool2dGrad") {
  unsigned seed = 7000;
  for (const PoolCase& k : kPoolCases) {
    CAPTURE(shape_str(k.x)); CAPTURE(k.kernel); CAPTURE(k.S); CAPTURE(k.P);
    const int K = k.kernel, S = k.S, P = k.P;
    const Tensor<double> x = uniform(k.x, 0.5, 2.0, seed++, true).data();
    const Shape sy = F::avg_pool2d(Variable64(x), K, S, P).shape();
    const auto pool = [=](const Variable64& v) { return F::avg_pool2d(v, K, S, P); };
    const V gy = {uniform(sy, 0.5, 2.0, seed++, true)};
    CHECK_GRADCHECK([=](const V& v) { return pool_grad(x, v[0], pool); }, gy);
    // Linear in gy: its create_graph backward is checked through a square.
    CHECK_GRADGRADCHECK([=](const V& v) { return zg::sum(zg::square(pool_grad(x, v[0], pool)[0])); }, gy);
  }
}

// Layers

TEST_CASE("Conv2d, MaxPool2d: SimpleConvNet's first layers") {
  zg::manual_seed(42);
  nn::Conv2d conv(1, 30, 5, 1, 0, 0.01);
  nn::MaxPool2d pool(2);
  const auto params = conv.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[0].second.shape() == Shape{30, 1, 5, 5});
  CHECK(params[1].first == "bias");
  CHECK(params[1].second.shape() == Shape{30});
  CHECK(xt::all(xt::equal(conv.bias.data(), 0.f)));
  CHECK(conv.type_name() == "Conv2d");
  CHECK(conv.extra_repr() == "in=1, out=30, kernel=5, stride=1, pad=0");
  CHECK(pool.type_name() == "MaxPool2d");
  CHECK(pool.extra_repr() == "kernel=2, stride=2, pad=0");
  const double std = std::sqrt(xt::mean(xt::square(conv.weight.data()))());
  CHECK(std == doctest::Approx(0.01).epsilon(0.15));

  auto x = random<float>({3, 1, 28, 28}, 1);
  auto h = conv(x);
  CHECK(h.shape() == Shape{3, 30, 24, 24});
  auto y = pool(h);
  CHECK(y.shape() == Shape{3, 30, 12, 12});
  zg::sum(y).backward();
  CHECK(conv.weight.grad().shape() == Shape{30, 1, 5, 5});
  CHECK(conv.bias.grad().shape() == Shape{30});
}

TEST_CASE("Conv2d: He init by default, stride and pad, AvgPool2d") {
  zg::manual_seed(7);
  nn::Conv2d conv(16, 32, 3, 2, 1);
  const double he = std::sqrt(2.0 / (16 * 9));
  CHECK(std::sqrt(xt::mean(xt::square(conv.weight.data()))()) == doctest::Approx(he).epsilon(0.1));
  CHECK(conv.extra_repr() == "in=16, out=32, kernel=3, stride=2, pad=1");
  CHECK(conv(random<float>({2, 16, 9, 9}, 2)).shape() == Shape{2, 32, 5, 5});

  nn::AvgPool2d avg(3, 0, 1);
  CHECK(avg.type_name() == "AvgPool2d");
  CHECK(avg.extra_repr() == "kernel=3, stride=3, pad=1");
  CHECK(avg(random<float>({2, 4, 7, 7}, 3)).shape() == Shape{2, 4, 3, 3});
  CHECK(nn::MaxPool2d(3, 1, 1)(random<float>({1, 2, 6, 6}, 4)).shape() == Shape{1, 2, 6, 6});
}

// Bad input

TEST_CASE("bad input: conv and pooling name the op and the shapes") {
  const auto ones = [](const Shape& s) { return Variable(Tensor<float>(xt::ones<float>(s))); };
  const auto conv_error = [&](const Shape& x, const Shape& w, const Shape& b, int S = 1, int P = 0) {
    return message_of<ShapeError>([&] { F::conv2d(ones(x), ones(w), b.empty() ? Variable() : ones(b), S, P); });
  };
  CHECK(conv_error({1, 28, 28}, {30, 1, 5, 5}, {30}) == "Conv2d: input must be 4-D (N, C, H, W), got (1, 28, 28)");
  CHECK(conv_error({2, 1, 28, 28}, {30, 25}, {30}) == "Conv2d: weight must be 4-D (FN, C, KH, KW), got (30, 25)");
  CHECK(conv_error({2, 3, 28, 28}, {30, 1, 5, 5}, {30}) ==
        "Conv2d: input has 3 channels, weight (30, 1, 5, 5) expects 1");
  CHECK(conv_error({2, 1, 28, 28}, {30, 1, 5, 5}, {4}) ==
        "Conv2d: bias (4) does not match weight (30, 1, 5, 5): expected (30)");
  CHECK(conv_error({2, 1, 28, 28}, {30, 1, 5, 5}, {1, 30}) ==
        "Conv2d: bias (1, 30) does not match weight (30, 1, 5, 5): expected (30)");
  CHECK(conv_error({1, 1, 3, 3}, {2, 1, 5, 5}, {}) ==
        "Conv2d: kernel 5x5 does not fit the padded input 3x3 (input (1, 1, 3, 3), pad 0)");
  CHECK(conv_error({1, 1, 3, 4}, {2, 1, 6, 3}, {}, 1, 1) ==
        "Conv2d: kernel 6x3 does not fit the padded input 5x6 (input (1, 1, 3, 4), pad 1)");
  CHECK(conv_error({1, 1, 8, 8}, {2, 1, 3, 3}, {}, 0) == "Conv2d: stride must be >= 1, got 0");
  CHECK(conv_error({1, 1, 8, 8}, {2, 1, 3, 3}, {}, 1, -1) == "Conv2d: pad must be >= 0, got -1");

  CHECK(message_of<ShapeError>([&] { F::conv_transpose2d(ones({1, 2, 3, 3}), ones({2, 1, 3, 3}), 2, 1, {9, 9}); }) ==
        "ConvTranspose2d: output size 9x9 convolves to 5x5, not to the input's 3x3 (kernel 3x3, stride=2, pad=1)");
  CHECK(message_of<ShapeError>([&] { F::conv_transpose2d(ones({1, 3, 3, 3}), ones({2, 1, 3, 3})); }) ==
        "ConvTranspose2d: input has 3 channels, weight (2, 1, 3, 3) expects 2");
  CHECK(message_of<ShapeError>([&] { F::conv2d_grad_weight(ones({2, 1, 8, 8}), ones({2, 4, 5, 5}), {3, 3}); }) ==
        "Conv2dGradW: gradient (2, 4, 5, 5) does not match input (2, 1, 8, 8) convolved to 6x6 (kernel 3x3, "
        "stride=1, pad=0)");

  const auto pool_error = [&](const Shape& x, int K, int S, int P) {
    return message_of<ShapeError>([&] { F::max_pool2d(ones(x), K, S, P); });
  };
  CHECK(pool_error({2, 4, 4}, 2, 2, 0) == "MaxPool2d: input must be 4-D (N, C, H, W), got (2, 4, 4)");
  CHECK(pool_error({1, 1, 4, 4}, 5, 5, 0) ==
        "MaxPool2d: kernel 5x5 does not fit the padded input 4x4 (input (1, 1, 4, 4), pad 0)");
  CHECK(pool_error({1, 1, 4, 4}, 2, 0, 0) == "MaxPool2d: stride must be >= 1, got 0");
  CHECK(pool_error({1, 1, 4, 4}, 0, 1, 0) == "MaxPool2d: kernel must be >= 1, got 0");
  CHECK(pool_error({1, 1, 4, 4}, 3, 1, 2) == "MaxPool2d: pad 2 is more than half the kernel 3");
  // With pad 1 a 2x2 window fits a 0-row input, but it would hold padding only.
  CHECK(pool_error({1, 1, 0, 4}, 2, 1, 1) == "MaxPool2d: input (1, 1, 0, 4) has empty planes");
  CHECK(message_of<ShapeError>([&] { F::avg_pool2d(ones({1, 1, 2, 2}), 3); }) ==
        "AvgPool2d: kernel 3x3 does not fit the padded input 2x2 (input (1, 1, 2, 2), pad 0)");

  CHECK(message_of<ShapeError>([] { nn::Conv2d(1, 30, 5, 0); }) == "Conv2d: stride must be >= 1, got 0");
  CHECK(message_of<ValueError>([] { nn::Conv2d(1, 30, 5, 1, 0, -1.0); }) ==
        "Conv2d: weight_std must be finite and >= 0 (0: He init), got -1.000000");
  CHECK(message_of<ShapeError>([] { nn::MaxPool2d(2, 0, 2); }) == "MaxPool2d: pad 2 is more than half the kernel 2");
  nn::Conv2d conv(1, 30, 5);
  CHECK(message_of<ShapeError>([&] { conv(ones({2, 3, 28, 28})); }) ==
        "Conv2d: input has 3 channels, weight (30, 1, 5, 5) expects 1");
}

TEST_CASE("conv2d with zero filters: an empty output and a zero input gradient") {
  // The column buffers are not zeroed in advance: the empty product must write zeros.
  for (int threads : {1, 2}) {
    const int before = num_threads();
    set_num_threads(threads);
    Variable x(Tensor<float>(xt::ones<float>({3, 2, 5, 5}))), W(Tensor<float>::from_shape({0, 2, 3, 3}));
    x.requires_grad_();
    W.requires_grad_();
    Variable y = F::conv2d(x, W, Variable(), 1, 1);
    CHECK(y.shape() == Shape{3, 0, 5, 5});
    zg::sum(y).backward();
    CHECK(x.grad().data() == Tensor<float>(xt::zeros<float>({3, 2, 5, 5})));
    CHECK(W.grad().shape() == Shape{0, 2, 3, 3});
    set_num_threads(before);
  }
}
