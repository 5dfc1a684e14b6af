// conv2d, conv_transpose2d, conv2d_grad_weight and the Conv2d layer: values
// and gradients against direct nested loops, float32 against float64 on
// DeepConvNet's shapes, gradcheck of every Function to second order,
// SimpleConvNet's first layers and the bad-input messages of conv and pooling.
#include "conv_testing.hpp"

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

// Checks Note [One pass over gy]: a plain backward gets a convolution's gradients
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
