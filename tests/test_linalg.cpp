// matmul (vector cases, transpose flags, stacks with broadcast batches) and
// linear (with and without bias, over the last axis): values against a
// triple loop and PyTorch, gradcheck, second order and shape errors.
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xreducer.hpp>

#include "golden/seq_ops_golden.hpp"
#include "golden18.hpp"
#include "kernels/blas.hpp"  // library-private; the tests see autograd/src
#include "ops/common.hpp"
#include "testing.hpp"

using namespace zg;
using zg::testing::check_product;
using zg::testing::element;
using zg::testing::message_of;
using zg::testing::uniform;
using V = std::vector<Variable64>;
using Dims = std::array<std::size_t, 3>;

namespace {

// (M, K, N) triples: a row (1 x K), a column (K x 1), an outer product
// (K = 1), 1 x 1, shapes big enough for BLAS to block, and TwoLayerNet's
// layers at batches 100, 4 and 1. In float some run on libxsmm's kernels and
// some on OpenBLAS, which ones depending on the ISA (Note [Small products]).
const std::vector<Dims> kShapes = {{1, 1, 1},    {1, 7, 5},     {6, 7, 1},    {5, 1, 4},    {3, 4, 2},
                                   {13, 17, 11}, {64, 33, 20},  {50, 100, 10}, {100, 10, 50}, {100, 784, 50},
                                   {4, 784, 50}, {1, 784, 50},  {100, 50, 10}, {4, 50, 10},  {1, 50, 10},
                                   {100, 50, 16}, {100, 784, 64}};

template <class T>
BasicVariable<T> random(const Shape& shape, unsigned seed) {
  return BasicVariable<T>(Tensor<T>(uniform(shape, -1.0, 1.0, seed).data()));
}

}  // namespace

TEST_CASE_TEMPLATE("matmul: values against a triple loop", T, float, double) {
  unsigned seed = 1;
  for (const Dims& d : kShapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const std::size_t M = d[0], K = d[1], N = d[2];
        CAPTURE(M); CAPTURE(K); CAPTURE(N); CAPTURE(ta); CAPTURE(tb);
        auto a = random<T>(ta ? Shape{K, M} : Shape{M, K}, seed++);
        auto b = random<T>(tb ? Shape{N, K} : Shape{K, N}, seed++);
        auto y = zg::matmul(a, b, ta, tb);
        REQUIRE(y.shape() == Shape{M, N});
        check_product(y.data(), a.data(), b.data(), ta, tb);
        if (!ta && !tb) CHECK(zg::matmul(a, b).data() == y.data());
      }
}

TEST_CASE("small products: the shape rule of Note [Small products]") {
  using detail::SmallIsa;
  for (SmallIsa isa : {SmallIsa::avx512, SmallIsa::avx2}) {
    const auto fits = [isa](bool ta, bool tb, std::size_t N, std::size_t K, float alpha, float beta) {
      return detail::small_product_fits(ta, tb, N, K, alpha, beta, isa);
    };
    CAPTURE(isa == SmallIsa::avx2);
    CHECK(fits(false, false, 784, 144, 1.f, 0.f));   // a 3x3 convolution of 16 channels
    CHECK(fits(false, false, 128, 1024, 1.f, 0.f));  // K N = 131072
    CHECK(fits(true, false, 64, 256, 1.f, 1.f));     // a weight gradient, accumulated
    CHECK(fits(false, true, 50, 10, 1.f, 0.f));      // a 10-class layer's input gradient: short K
    CHECK_FALSE(fits(false, false, 64, 1025, 1.f, 0.f));  // K over 1024
    CHECK_FALSE(fits(false, false, 1040, 1, 1.f, 0.f));   // N over 1024
    CHECK_FALSE(fits(false, false, 512, 512, 1.f, 0.f));  // op(B) over 512 KB
    CHECK_FALSE(fits(true, false, 64, 257, 1.f, 0.f));    // A transposed: K up to 256
    CHECK_FALSE(fits(false, true, 9, 784, 1.f, 0.f));     // narrow B^T with long K
    CHECK_FALSE(fits(false, false, 16, 50, 0.5f, 0.f));   // alpha must be 1
    CHECK_FALSE(fits(false, false, 16, 50, 1.f, 0.5f));   // beta 0 or 1
    // N not a multiple of 16 with K over 16: AVX-512 only.
    const bool wide = isa == SmallIsa::avx512;
    CHECK(fits(false, false, 10, 50, 1.f, 0.f) == wide);   // a 10-class layer's forward
    CHECK(fits(false, false, 50, 784, 1.f, 0.f) == wide);  // TwoLayerNet's first layer
    CHECK(fits(true, false, 10, 100, 1.f, 1.f) == wide);   // a weight gradient of 10 columns
    CHECK(fits(false, true, 9, 256, 1.f, 0.f) == wide);    // narrow B^T, short K
  }
}

TEST_CASE("small products: libxsmm's kernels give the product, with strides, transposes and beta") {
  const std::vector<Dims> shapes = {{50, 100, 10}, {100, 10, 50}, {17, 3, 9}, {1, 5, 1}, {16, 40, 12},
                                    {300, 144, 16}, {7, 256, 64}, {16, 144, 784}};
  unsigned seed = 100;
  std::size_t ran = 0, fit = 0;
  for (const Dims& d : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.f, 1.f}) {
          const std::size_t M = d[0], K = d[1], N = d[2];
          CAPTURE(M); CAPTURE(K); CAPTURE(N); CAPTURE(ta); CAPTURE(tb); CAPTURE(beta);
          if (!detail::small_product_fits(ta, tb, N, K, 1.f, beta, detail::small_isa())) continue;
          ++fit;
          // Operands and C inside wider rows (leading dimensions past the row length).
          const Tensor<float> a = random<float>(ta ? Shape{K, M + 3} : Shape{M, K + 3}, seed++).data();
          const Tensor<float> b = random<float>(tb ? Shape{N, K + 2} : Shape{K, N + 2}, seed++).data();
          Tensor<float> c = random<float>(Shape{M, N + 1}, seed++).data();
          const Tensor<float> c0 = c;
          if (!detail::small_product(ta, tb, M, N, K, 1.f, a.data(), a.shape()[1], b.data(), b.shape()[1], beta,
                                     c.data(), N + 1))
            continue;  // built without libxsmm, or it has no kernel here: gemm uses OpenBLAS
          ++ran;
          std::size_t bad = 0;
          for (std::size_t i = 0; i < M; ++i) {
            for (std::size_t j = 0; j < N; ++j) {
              long double ref = 0, mag = 0;
              for (std::size_t k = 0; k < K; ++k) {
                const long double p = static_cast<long double>(element(a, ta, i, k)) * element(b, tb, k, j);
                ref += p;
                mag += std::abs(p);
              }
              ref += beta * static_cast<long double>(c0(i, j));
              mag += std::abs(beta * c0(i, j));
              if (!(std::abs(c(i, j) - ref) <= 2 * (K + 2) * std::numeric_limits<float>::epsilon() * mag)) ++bad;
            }
            if (c(i, N) != c0(i, N)) ++bad;  // past the row: untouched
          }
          CHECK(bad == 0);
        }
  // With libxsmm on a CPU it generates AVX2 or wider kernels for, every case
  // ran on them; elsewhere gemm's OpenBLAS fallback is what runs.
  // Under AVX2 the rule admits fewer of them: N = 10 and 12 with K over 16 go to OpenBLAS.
  CHECK(fit == (detail::small_isa() == detail::SmallIsa::avx512 ? shapes.size() : shapes.size() - 2) * 8);
  if (detail::small_kernels_expected()) CHECK(ran == fit);
  else MESSAGE("libxsmm kernels not expected here (no libxsmm, or a CPU below AVX2): " << ran << " cases ran on them");
  // Outside the rule it declines, and gemm runs OpenBLAS.
  float x = 1, y = 0;
  CHECK_FALSE(detail::small_product(false, false, 1, 1, 1, 0.5f, &x, 1, &x, 1, 0.f, &y, 1));
}

TEST_CASE_TEMPLATE("matmul: vector cases follow numpy", T, float, double) {
  auto v = random<T>({7}, 1), w = random<T>({7}, 2), m = random<T>({7, 5}, 3), n = random<T>({4, 7}, 4);
  const auto row = [](const BasicVariable<T>& x) { return zg::reshape(x, {1, x.shape()[0]}); };
  const auto col = [](const BasicVariable<T>& x) { return zg::reshape(x, {x.shape()[0], 1}); };

  auto vm = zg::matmul(v, m);
  REQUIRE(vm.shape() == Shape{5});
  check_product(zg::reshape(vm, {1, 5}).data(), row(v).data(), m.data(), false, false);

  auto nv = zg::matmul(n, v);
  REQUIRE(nv.shape() == Shape{4});
  check_product(zg::reshape(nv, {4, 1}).data(), n.data(), col(v).data(), false, false);

  auto vw = zg::matmul(v, w);
  REQUIRE(vw.shape() == Shape{});
  check_product(zg::reshape(vw, {1, 1}).data(), row(v).data(), col(w).data(), false, false);
}

// Each matrix of a stacked product against the 2-D product of the operands' matrices it pairs.
TEST_CASE_TEMPLATE("matmul: stacks, broadcast batches and transposes, matrix by matrix", T, float, double) {
  unsigned seed = 400;
  const std::vector<std::pair<Shape, Shape>> batches = {
      {{3}, {}}, {{}, {3}}, {{2, 3}, {2, 3}}, {{2, 1}, {1, 3}}, {{1, 2}, {4, 1, 2}}, {{4, 2}, {2}}};
  for (const auto& pair : batches)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const std::size_t M = 5, K = 7, N = 3;
        const Shape& ba = pair.first;
        const Shape& bb = pair.second;
        CAPTURE(shape_str(ba)); CAPTURE(shape_str(bb)); CAPTURE(ta); CAPTURE(tb);
        Shape sa = ba, sb = bb;
        sa.insert(sa.end(), {ta ? K : M, ta ? M : K});
        sb.insert(sb.end(), {tb ? N : K, tb ? K : N});
        auto a = random<T>(sa, seed++), b = random<T>(sb, seed++);
        auto y = zg::matmul(a, b, ta, tb);
        const Shape batch = broadcast_shapes(ba, bb, "test");
        Shape want = batch;
        want.insert(want.end(), {M, N});
        REQUIRE(y.shape() == want);
        if (!ta && !tb) CHECK(zg::matmul(a, b).data() == y.data());
        // Matrix i of y takes the matrices of a and b at i's broadcast positions.
        const std::size_t count = y.size() / (M * N);
        for (std::size_t i = 0; i < count; ++i) {
          std::vector<Index> at_y, at_a, at_b;
          for (std::size_t d = 0, rest = i; d < batch.size(); ++d) {
            std::size_t stride = 1;
            for (std::size_t e = d + 1; e < batch.size(); ++e) stride *= batch[e];
            const std::size_t pos = rest / stride;
            rest %= stride;
            at_y.push_back(static_cast<std::ptrdiff_t>(pos));
            const std::size_t lead = batch.size() - d;  // axes from the right
            if (ba.size() >= lead) at_a.push_back(static_cast<std::ptrdiff_t>(ba[ba.size() - lead] == 1 ? 0 : pos));
            if (bb.size() >= lead) at_b.push_back(static_cast<std::ptrdiff_t>(bb[bb.size() - lead] == 1 ? 0 : pos));
          }
          check_product(zg::get_item(y, at_y).data(), zg::get_item(a, at_a).data(), zg::get_item(b, at_b).data(), ta, tb);
        }
      }
}

TEST_CASE("matmul: stacks and vectors equal PyTorch's values and gradients") {
  using namespace golden_seq;
  const auto A = [](const Shape& s) { return golden18::ramp(s, [](double i) { return std::sin(0.7 * i + 0.3); }); };
  const auto B = [](const Shape& s) { return golden18::ramp(s, [](double i) { return std::cos(0.45 * i - 0.2); }); };
  const auto mm = [](const V& v) { return zg::matmul(v[0], v[1]); };
  golden18::check_against(mm, {A({2, 1, 3, 4}), B({3, 4, 5})}, matmul_bcast, {matmul_bcast_grad0, matmul_bcast_grad1});
  golden18::check_against(mm, {A({2, 3, 4}), B({4, 5})}, matmul_fold, {matmul_fold_grad0, matmul_fold_grad1});
  golden18::check_against(mm, {A({3, 4}), B({2, 4, 5})}, matmul_left2d, {matmul_left2d_grad0, matmul_left2d_grad1});
  golden18::check_against([](const V& v) { return zg::matmul(v[0], v[1], true, true); }, {A({2, 4, 3}), B({1, 5, 4})},
                          matmul_trans, {matmul_trans_grad0, matmul_trans_grad1});
  golden18::check_against(mm, {A({4}), B({2, 4, 3})}, matmul_vec_left, {matmul_vec_left_grad0, matmul_vec_left_grad1});
  golden18::check_against(mm, {A({2, 3, 4}), B({4})}, matmul_vec_right,
                          {matmul_vec_right_grad0, matmul_vec_right_grad1});
}

TEST_CASE_TEMPLATE("linear: values against a triple loop, with and without bias", T, float, double) {
  unsigned seed = 50;
  for (const Dims& d : kShapes) {
    const std::size_t N = d[0], in = d[1], out = d[2];
    CAPTURE(N); CAPTURE(in); CAPTURE(out);
    auto x = random<T>({N, in}, seed++), W = random<T>({in, out}, seed++), b = random<T>({out}, seed++);
    auto y = zg::linear(x, W, b);
    REQUIRE(y.shape() == Shape{N, out});
    check_product(y.data(), x.data(), W.data(), false, false, &b.data());
    auto y0 = zg::linear(x, W);
    check_product(y0.data(), x.data(), W.data(), false, false);
    CHECK(y0.data() == zg::matmul(x, W).data());
  }
}

TEST_CASE_TEMPLATE("matmul: backward against the definition", T, float, double) {
  unsigned seed = 200;
  for (const Dims& d : kShapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const std::size_t M = d[0], K = d[1], N = d[2];
        CAPTURE(M); CAPTURE(K); CAPTURE(N); CAPTURE(ta); CAPTURE(tb);
        auto a = random<T>(ta ? Shape{K, M} : Shape{M, K}, seed++).requires_grad_();
        auto b = random<T>(tb ? Shape{N, K} : Shape{K, N}, seed++).requires_grad_();
        auto g = random<T>({M, N}, seed++);
        typename BasicVariable<T>::BackwardOptions options;
        options.seed = g;
        zg::matmul(a, b, ta, tb).backward(options);
        // d op(A)(i, k) = sum_j G(i, j) op(B)(k, j): the stored gradient is its transpose under ta.
        Tensor<T> ga = Tensor<T>::from_shape(a.shape()), gb = Tensor<T>::from_shape(b.shape());
        for (std::size_t i = 0; i < M; ++i)
          for (std::size_t k = 0; k < K; ++k) {
            long double s = 0;
            for (std::size_t j = 0; j < N; ++j) s += static_cast<long double>(g.data()(i, j)) * element(b.data(), tb, k, j);
            (ta ? ga(k, i) : ga(i, k)) = static_cast<T>(s);
          }
        for (std::size_t k = 0; k < K; ++k)
          for (std::size_t j = 0; j < N; ++j) {
            long double s = 0;
            for (std::size_t i = 0; i < M; ++i) s += static_cast<long double>(element(a.data(), ta, i, k)) * g.data()(i, j);
            (tb ? gb(j, k) : gb(k, j)) = static_cast<T>(s);
          }
        const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-12;
        CHECK(xt::allclose(a.grad().data(), ga, tol, tol));
        CHECK(xt::allclose(b.grad().data(), gb, tol, tol));
      }
}

TEST_CASE_TEMPLATE("linear: db is the batch sum, dW is x^T gy, a data batch gets no gradient", T, float, double) {
  auto x = random<T>({6, 4}, 300), W = random<T>({4, 3}, 301).requires_grad_();
  auto b = random<T>({3}, 302).requires_grad_();
  auto g = random<T>({6, 3}, 303);
  typename BasicVariable<T>::BackwardOptions options;
  options.seed = g;
  zg::linear(x, W, b).backward(options);
  CHECK_FALSE(x.grad().defined());
  Tensor<T> db = xt::sum(g.data(), {0}, xt::evaluation_strategy::immediate);
  CHECK(xt::allclose(b.grad().data(), db));
  check_product(W.grad().data(), x.data(), g.data(), true, false);
}

// The cases of Note [Narrow rows]: whole periods, a tail of fewer rows than a period, a
// single period, one row, one column and the widths where the kernels
// switch to the row loop.
TEST_CASE_TEMPLATE("narrow rows: bias add and column sums match the row loops", T, float, double) {
  unsigned seed = 80;
  for (std::size_t cols = 1; cols <= 2 * detail::kNarrowCols; ++cols) {
    const std::size_t period = detail::narrow_row_period(cols);
    CHECK(period == cols * 8 / std::gcd(cols, std::size_t{8}));  // whole rows and whole 8-value vectors
  }
  // Periods of every register count add_row unrolls (1 to 7 registers for
  // float, 2 to 8 for double) and longer ones.
  for (std::size_t cols : {0, 1, 3, 6, 8, 10, 12, 14, 16, 24, 32, 40, 48, 56, 63, 64, 65})
    for (std::size_t rows : {1, 2, 4, 7, 100, 203}) {
      CAPTURE(cols); CAPTURE(rows);
      const Tensor<T> y0 = random<T>({rows, cols}, seed++).data();
      const Tensor<T> b = random<T>({cols}, seed++).data();
      Tensor<T> y = y0;
      detail::add_row(y.data(), b.data(), rows, cols);
      Tensor<T> want = y0 + b;
      CHECK(y == want);  // one addition per element, in any order: exact
      std::vector<T> sums(cols);
      detail::column_sums(y0.data(), rows, cols, sums.data());
      for (std::size_t j = 0; j < cols; ++j) {
        long double s = 0;
        for (std::size_t r = 0; r < rows; ++r) s += y0(r, j);
        CHECK(std::abs(sums[j] - static_cast<T>(s)) <= (std::is_same_v<T, float> ? 1e-4 : 1e-12));
      }
    }
}

TEST_CASE("linear with zero outputs: empty results, zero input gradient, no hang") {
  Variable x(Tensor<float>(xt::ones<float>({4, 3})));
  Variable W(Tensor<float>::from_shape({3, 0})), b(Tensor<float>::from_shape({0}));
  x.requires_grad_();
  W.requires_grad_();
  b.requires_grad_();
  Variable y = zg::linear(x, W, b);
  CHECK(y.shape() == Shape{4, 0});
  zg::sum(y).backward();
  CHECK(x.grad().data() == Tensor<float>(xt::zeros<float>({4, 3})));
  CHECK(W.grad().shape() == Shape{3, 0});
  CHECK(b.grad().shape() == Shape{0});
  // A B^T with no columns: gemm returns before BLAS, which rejects some
  // empty arrays (cblas_somatcopy reported an illegal argument).
  Variable B(Tensor<float>::from_shape({0, 3}));
  B.requires_grad_();
  x.cleargrad();
  Variable z = zg::matmul(x, B, false, true);
  CHECK(z.shape() == Shape{4, 0});
  zg::sum(z).backward();
  CHECK(x.grad().data() == Tensor<float>(xt::zeros<float>({4, 3})));
  CHECK(B.grad().shape() == Shape{0, 3});
}

ZG_GRADCHECK_CASE("MatMul") {
  unsigned seed = 1000;
  for (const Dims& d : kShapes) {
    if (d[0] * d[1] * d[2] > 200) continue;  // gradcheck is O(size^2)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const std::size_t M = d[0], K = d[1], N = d[2];
        CAPTURE(M); CAPTURE(K); CAPTURE(N); CAPTURE(ta); CAPTURE(tb);
        V xs = {uniform(ta ? Shape{K, M} : Shape{M, K}, 0.5, 2.0, seed++, true),
                uniform(tb ? Shape{N, K} : Shape{K, N}, 0.5, 2.0, seed++, true)};
        CHECK_GRADCHECK([=](const V& v) { return zg::matmul(v[0], v[1], ta, tb); }, xs);
        CHECK_GRADGRADCHECK([=](const V& v) { return zg::sum(zg::square(zg::matmul(v[0], v[1], ta, tb))); }, xs);
      }
  }
  for (const auto& pair : std::vector<std::pair<Shape, Shape>>{
           {{5}, {5, 3}}, {{2, 5}, {5}}, {{5}, {5}}, {{1}, {1, 4}}, {{3, 1}, {1}}, {{4, 3}, {3, 2}}}) {
    const Shape& sa = pair.first;
    const Shape& sb = pair.second;
    CAPTURE(shape_str(sa)); CAPTURE(shape_str(sb));
    V xs = {uniform(sa, 0.5, 2.0, seed++, true), uniform(sb, 0.5, 2.0, seed++, true)};
    CHECK_GRADCHECK([](const V& v) { return zg::matmul(v[0], v[1]); }, xs);
    CHECK_GRADGRADCHECK([](const V& v) { return zg::sum(zg::square(zg::matmul(v[0], v[1]))); }, xs);
  }
  // Stacks: batch broadcast both ways, a shared right matrix (one GEMM),
  // a shared left one, vectors against stacks, and transposes of stacks.
  for (const auto& pair : std::vector<std::pair<Shape, Shape>>{{{2, 3, 4}, {4, 2}},
                                                              {{2, 1, 2, 3}, {3, 3, 2}},
                                                              {{3, 2}, {2, 2, 3}},
                                                              {{2, 2, 3}, {2, 3, 2}},
                                                              {{1, 2, 3}, {2, 3, 1}},
                                                              {{3}, {2, 3, 2}},
                                                              {{2, 2, 3}, {3}}}) {
    const Shape& sa = pair.first;
    const Shape& sb = pair.second;
    CAPTURE(shape_str(sa)); CAPTURE(shape_str(sb));
    V xs = {uniform(sa, 0.5, 2.0, seed++, true), uniform(sb, 0.5, 2.0, seed++, true)};
    CHECK_GRADCHECK([](const V& v) { return zg::matmul(v[0], v[1]); }, xs);
    CHECK_GRADGRADCHECK([](const V& v) { return zg::sum(zg::square(zg::matmul(v[0], v[1]))); }, xs);
  }
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta); CAPTURE(tb);
      V xs = {uniform(ta ? Shape{2, 1, 3, 2} : Shape{2, 1, 2, 3}, 0.5, 2.0, seed++, true),
              uniform(tb ? Shape{2, 4, 3} : Shape{2, 3, 4}, 0.5, 2.0, seed++, true)};
      CHECK_GRADCHECK([=](const V& v) { return zg::matmul(v[0], v[1], ta, tb); }, xs);
      CHECK_GRADGRADCHECK([=](const V& v) { return zg::sum(zg::square(zg::matmul(v[0], v[1], ta, tb))); }, xs);
      V shared = {uniform(ta ? Shape{2, 3, 2} : Shape{2, 2, 3}, 0.5, 2.0, seed++, true),
                  uniform(tb ? Shape{4, 3} : Shape{3, 4}, 0.5, 2.0, seed++, true)};
      CHECK_GRADCHECK([=](const V& v) { return zg::matmul(v[0], v[1], ta, tb); }, shared);
      CHECK_GRADGRADCHECK([=](const V& v) { return zg::sum(zg::square(zg::matmul(v[0], v[1], ta, tb))); }, shared);
    }
  // One operand on both sides: a a^T and a^T a.
  V a = {uniform({3, 4}, 0.5, 2.0, seed++, true)};
  CHECK_GRADCHECK([](const V& v) { return zg::matmul(v[0], v[0], false, true); }, a);
  CHECK_GRADGRADCHECK([](const V& v) { return zg::sum(zg::square(zg::matmul(v[0], v[0], true, false))); }, a);
}

ZG_GRADCHECK_CASE("Linear") {
  unsigned seed = 2000;
  for (const Dims& d : std::vector<Dims>{{4, 3, 2}, {1, 5, 1}, {3, 1, 4}, {1, 1, 1}, {2, 6, 3}}) {
    const std::size_t N = d[0], in = d[1], out = d[2];
    CAPTURE(N); CAPTURE(in); CAPTURE(out);
    V xs = {uniform({N, in}, 0.5, 2.0, seed++, true), uniform({in, out}, 0.5, 2.0, seed++, true),
            uniform({out}, 0.5, 2.0, seed++, true)};
    V no_bias = {xs[0], xs[1]};
    CHECK_GRADCHECK([](const V& v) { return zg::linear(v[0], v[1], v[2]); }, xs);
    CHECK_GRADCHECK([](const V& v) { return zg::linear(v[0], v[1]); }, no_bias);
    CHECK_GRADGRADCHECK([](const V& v) { return zg::sum(zg::square(zg::linear(v[0], v[1], v[2]))); }, xs);
    CHECK_GRADGRADCHECK([](const V& v) { return zg::sum(zg::square(zg::linear(v[0], v[1]))); }, no_bias);
  }
  // Over the last axis of (B, T, in) and of a vector (in).
  for (const Shape& sx : std::vector<Shape>{{2, 3, 4}, {2, 1, 2, 4}, {4}}) {
    CAPTURE(shape_str(sx));
    V xs = {uniform(sx, 0.5, 2.0, seed++, true), uniform({4, 3}, 0.5, 2.0, seed++, true),
            uniform({3}, 0.5, 2.0, seed++, true)};
    CHECK_GRADCHECK([](const V& v) { return zg::linear(v[0], v[1], v[2]); }, xs);
    CHECK_GRADGRADCHECK([](const V& v) { return zg::sum(zg::square(zg::linear(v[0], v[1], v[2]))); }, xs);
  }
}

TEST_CASE("bad input: matmul and linear shapes") {
  const auto ones = [](const Shape& s) { return Variable(Tensor<float>(xt::ones<float>(s))); };
  const auto matmul_error = [](const Variable& a, const Variable& b) {
    return message_of<ShapeError>([&] { zg::matmul(a, b); });
  };
  CHECK(matmul_error(ones({2, 3}), ones({4, 5})) == "MatMul: inner dimensions differ: (2, 3) @ (4, 5)");
  CHECK(matmul_error(ones({3}), ones({4, 5})) == "MatMul: inner dimensions differ: (3) @ (4, 5)");
  CHECK(matmul_error(ones({2, 3}), ones({4})) == "MatMul: inner dimensions differ: (2, 3) @ (4)");
  CHECK(matmul_error(ones({3}), ones({4})) == "MatMul: inner dimensions differ: (3) @ (4)");
  CHECK(matmul_error(ones({2, 3, 4}), ones({5, 6})) == "MatMul: inner dimensions differ: (2, 3, 4) @ (5, 6)");
  CHECK(matmul_error(ones({2, 3, 4}), ones({3, 4, 6})) ==
        "MatMul: batch dimensions do not broadcast: (2, 3, 4) @ (3, 4, 6)");
  CHECK(matmul_error(ones({2, 1, 3, 4}), ones({5, 3, 4, 6})) ==
        "MatMul: batch dimensions do not broadcast: (2, 1, 3, 4) @ (5, 3, 4, 6)");
  CHECK(matmul_error(ones({5}), ones({2, 4, 3})) == "MatMul: inner dimensions differ: (5) @ (2, 4, 3)");
  CHECK(matmul_error(ones({2, 3, 4}), ones({3})) == "MatMul: inner dimensions differ: (2, 3, 4) @ (3)");
  CHECK(matmul_error(Variable(1.f), ones({3})) == "MatMul: operands need 1 or more dimensions, got () @ (3)");
  CHECK(message_of<ShapeError>([&] { zg::matmul(ones({2, 3, 4}), ones({2, 5, 4}), true, true); }) ==
        "MatMul: inner dimensions differ: (2, 3, 4)^T @ (2, 5, 4)^T");
  CHECK(message_of<ShapeError>([&] { zg::matmul(ones({3, 2}), ones({4, 5}), true, false); }) ==
        "MatMul: inner dimensions differ: (3, 2)^T @ (4, 5)");
  CHECK(message_of<ShapeError>([&] { zg::matmul(ones({2, 3}), ones({5, 4}), false, true); }) ==
        "MatMul: inner dimensions differ: (2, 3) @ (5, 4)^T");
  CHECK(message_of<ShapeError>([&] { zg::matmul(ones({3}), ones({3, 4}), true, false); }) ==
        "MatMul: the form with transpose flags needs operands of 2 or more dimensions (matmul(a, b) takes "
        "vectors), got (3)^T @ (3, 4)");

  const auto linear_error = [](const Variable& x, const Variable& W, const Variable& b) {
    return message_of<ShapeError>([&] { zg::linear(x, W, b); });
  };
  CHECK(linear_error(ones({2, 3, 4}), ones({12, 5}), Variable()) ==
        "Linear: inner dimensions differ: x (2, 3, 4) @ W (12, 5)");
  CHECK(linear_error(Variable(1.f), ones({1, 5}), Variable()) == "Linear: x must be (..., in), got x (), W (1, 5)");
  CHECK(linear_error(ones({2, 3}), ones({3}), Variable()) == "Linear: W must be 2-D (in, out), got x (2, 3), W (3)");
  CHECK(linear_error(ones({2, 3}), ones({4, 5}), ones({5})) == "Linear: inner dimensions differ: x (2, 3) @ W (4, 5)");
  CHECK(linear_error(ones({2, 3}), ones({3, 5}), ones({4})) == "Linear: bias (4) does not match W (3, 5): expected (5)");
  CHECK(linear_error(ones({2, 3}), ones({3, 5}), ones({1, 5})) ==
        "Linear: bias (1, 5) does not match W (3, 5): expected (5)");
}
