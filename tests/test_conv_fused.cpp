// conv2d_relu and conv2d_relu_pool, and Sequential's fusing into them:
// the values and gradients of the ops apart, on oneDNN's path and im2col's,
// ties, NaN, a retained graph, and gradcheck away from the kinks.
#include "conv_testing.hpp"

// Checks Note [Conv2d with ReLU]: the fused op against conv2d then relu, in float32
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
