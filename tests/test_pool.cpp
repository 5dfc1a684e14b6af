// max_pool2d and avg_pool2d: the book's reference, tie, padding and NaN
// rules, every plane width of the 2x2 path, and gradcheck of the poolings
// and their gradients to second order.
#include "conv_testing.hpp"

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
