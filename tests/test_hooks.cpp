// zg::grad (gradients of chosen outputs with respect to chosen inputs) and
// hooks on Variables (Note [Hooks] in engine.cpp).
#include <cmath>
#include <string>
#include <vector>

#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;
using V = std::vector<Variable64>;

namespace {

Variable64 leaf(Tensor<double> t, const char* name) {
  Variable64 v(std::move(t), name);
  v.requires_grad_();
  return v;
}

Variable64 column(std::vector<double> values, const char* name) {
  Tensor<double> t = Tensor<double>::from_shape({values.size(), 1});
  std::copy(values.begin(), values.end(), t.begin());
  return leaf(std::move(t), name);
}

// Passes its input through and counts its backward calls.
struct Counted final : Function<double> {
  int* calls;
  explicit Counted(int* c) : calls(c) {}
  std::string name() const override { return "Counted"; }
  Outputs<double> forward(const TensorList<double>& x) override { return Tensor<double>(x[0]); }
  Variables<double> backward(const Variables<double>& gy) override {
    ++*calls;
    return {gy[0]};
  }
};
Variable64 counted(const Variable64& x, int* calls) { return apply<double>(std::make_shared<Counted>(calls), {x})[0]; }

}  // namespace

TEST_CASE("grad: a Hessian-vector product equals the closed form, and no .grad is written") {
  // f(x) = x'Ax / 2 + sum(sin x), A symmetric: grad f = Ax + cos x, H v = Av - sin(x) v.
  const Tensor<double> a = {{2.0, 0.5, -1.0}, {0.5, 3.0, 0.25}, {-1.0, 0.25, 1.5}};
  Variable64 x = column({0.3, -0.7, 1.1}, "x");
  Variable64 v({{0.5}, {-1.5}, {2.0}}, "v");  // a 3x1 constant
  Variable64 av(Tensor<double>(a), "A");
  auto f = zg::sum(x * zg::matmul(av, x)) * 0.5 + zg::sum(zg::sin(x));
  GradOptions o;
  o.create_graph = true;
  const Variable64 g = zg::grad(f, {x}, {}, o)[0];
  const Variable64 hv = zg::grad(zg::sum(g * v), {x})[0];
  for (std::size_t i = 0; i < 3; ++i) {
    double want_g = std::cos(x.data()(i, 0)), want_hv = -std::sin(x.data()(i, 0)) * v.data()(i, 0);
    for (std::size_t j = 0; j < 3; ++j) {
      want_g += a(i, j) * x.data()(j, 0);
      want_hv += a(i, j) * v.data()(j, 0);
    }
    CHECK(g.data()(i, 0) == doctest::Approx(want_g).epsilon(1e-12));
    CHECK(hv.data()(i, 0) == doctest::Approx(want_hv).epsilon(1e-12));
  }
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(av.grad().defined());
}

TEST_CASE("grad: a gradient penalty differentiated again matches central differences") {
  // The critic D(x) = sum(tanh(x W)); the penalty |dD/dx|^2, differentiated in W.
  const Variable64 x = leaf(Tensor<double>{{0.2, -0.4, 0.9}, {1.1, 0.3, -0.6}}, "x");
  const Variable64 w = leaf(Tensor<double>{{0.5, -0.3}, {0.8, 0.1}, {-0.2, 0.7}}, "W");
  auto penalty = [&](const V& in) {
    EnableGradGuard record;  // gradcheck evaluates f under NoGradGuard too; the penalty needs a graph
    GradOptions o;
    o.create_graph = true;
    const Variable64 gx = zg::grad(zg::sum(zg::tanh(zg::matmul(x, in[0]))), {x}, {}, o)[0];
    return zg::sum(zg::square(gx));
  };
  CHECK_GRADCHECK(penalty, V{w});
  x.cleargrad();  // gradcheck's own backward wrote them
  w.cleargrad();
  const Variable64 p = penalty({w});
  CHECK_FALSE(x.grad().defined());  // grad() writes no .grad
  CHECK_FALSE(w.grad().defined());
  p.backward();
  CHECK(w.grad().defined());
}

TEST_CASE("grad: computed inputs, several outputs, seeds, and only the needed part of the graph runs") {
  Variable64 x = leaf(Tensor<double>{0.5, 1.5}, "x");
  int before = 0, between = 0;
  const Variable64 y = zg::square(counted(x, &before));  // y is computed: its creator's backward is not needed
  const Variable64 z = zg::sin(counted(y, &between));
  const Variable64 gy = zg::grad(zg::sum(z), {y})[0];
  CHECK(before == 0);
  CHECK(between == 1);
  for (std::size_t i = 0; i < 2; ++i) CHECK(gy.data()(i) == doctest::Approx(std::cos(y.data()(i))));

  // Two outputs with seeds: d(2 sum(x^2) + 3 sum(x)) / dx = 4x + 3.
  const V gx = zg::grad(V{zg::sum(zg::square(x)), zg::sum(x)}, {x}, V{Variable64(2.0), Variable64(3.0)});
  CHECK(gx[0].data()(0) == doctest::Approx(5.0));
  CHECK(gx[0].data()(1) == doctest::Approx(9.0));
  // The same input twice gets its gradient twice.
  const V twice = zg::grad(zg::sum(x * 2.0), {x, x});
  CHECK(twice[0].data()(1) == 2.0);
  CHECK(twice[1].data()(1) == 2.0);
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("grad: unused inputs, bad seeds and released graphs are clear errors") {
  Variable64 x = leaf(Tensor<double>{1.0, 2.0}, "x");
  Variable64 u = leaf(Tensor<double>{3.0}, "u");
  CHECK(message_of<zg::Error>([&] { zg::grad(zg::sum(x), {x, u}); }).find("input 1 'u' (1) is not used") != std::string::npos);
  GradOptions o;
  o.allow_unused = true;
  const V g = zg::grad(zg::sum(x), {x, u}, {}, o);
  CHECK(g[0].defined());
  CHECK_FALSE(g[1].defined());
  CHECK(message_of<zg::Error>([&] { zg::grad(zg::sum(x), {x}, {Variable64(Tensor<double>{1.0, 2.0})}); })
            .find("grad: seed gradient has shape (2) but the output has shape ()") != std::string::npos);
  CHECK(message_of<zg::Error>([&] { zg::grad(zg::sum(x), {Variable64(1.0, "c")}); }).find("grad: input 0 'c'") != std::string::npos);
  CHECK(message_of<zg::Error>([&] { zg::grad(V{}, {x}); }) == "grad: no outputs given");
  const Variable64 y = zg::sum(zg::exp(x));
  zg::grad(y, {x});  // frees the graph: retain_graph defaults to create_graph
  CHECK(message_of<zg::Error>([&] { zg::grad(y, {x}); }).find("already run and freed") != std::string::npos);
}

TEST_CASE("hooks: see the whole gradient once, in order, and may replace it") {
  Variable64 x = leaf(Tensor<double>{1.0, 2.0}, "x");
  const Variable64 y = x * 3.0;
  std::vector<std::string> calls;
  HookHandle first = y.register_hook([&](const Variable64& g) {
    calls.push_back("first " + std::to_string(g.data()(1)));
    return g * 2.0;
  });
  HookHandle second = y.register_hook([&](const Variable64& g) {
    calls.push_back("second " + std::to_string(g.data()(1)));
    return Variable64();  // keeps it
  });
  BackwardOptions<double> keep;
  keep.retain_graph = true;
  (zg::sum(y) + zg::sum(y * y)).backward(keep);  // y's gradient: 1 + 2y, summed before the hooks see it
  REQUIRE(calls.size() == 2);
  CHECK(calls[0] == "first " + std::to_string(13.0));
  CHECK(calls[1] == "second " + std::to_string(26.0));
  CHECK(x.grad().data()(1) == 78.0);  // (1 + 2y) * 2 * 3
  first.remove();
  first.remove();  // a second remove does nothing
  x.cleargrad();
  zg::sum(y).backward();
  CHECK(x.grad().data()(1) == 3.0);
  second.remove();
}

TEST_CASE("hooks: on a leaf before .grad, post-accumulate hooks once .grad is final") {
  Variable64 x = leaf(Tensor<double>{{0.3, -0.2}, {0.5, 0.1}}, "x");
  Variable64 w1 = leaf(Tensor<double>{{0.4, 0.2}, {-0.6, 0.9}}, "W1");
  Variable64 w2 = column({1.2, -0.7}, "W2");
  std::vector<std::string> events;
  std::vector<double> seen_grad;
  w1.register_hook([&](const Variable64& g) {
    events.push_back("pre W1");
    return g * 10.0;
  });
  w1.register_post_accumulate_grad_hook([&](const Variable64& v) {
    events.push_back("post W1");
    seen_grad.push_back(v.grad().data()(0, 0));
  });
  w2.register_post_accumulate_grad_hook([&](const Variable64&) { events.push_back("post W2"); });
  // W1 is used twice, at different depths: its .grad is final only after both.
  const Variable64 h = zg::tanh(zg::matmul(x, w1));
  const Variable64 loss = zg::sum(zg::matmul(h, w2)) + zg::sum(w1 * w1);
  BackwardOptions<double> o;
  o.observer = [&](const BackwardStep<double>& s) { events.push_back(s.function.name()); };
  loss.backward(o);
  const auto at = [&](const std::string& e) { return std::find(events.begin(), events.end(), e) - events.begin(); };
  CHECK(std::count(events.begin(), events.end(), "post W1") == 1);
  CHECK(std::count(events.begin(), events.end(), "pre W1") == 1);
  CHECK(at("post W2") < at("Tanh"));  // W2's gradient was final before the rest of backward ran
  CHECK(at("pre W1") + 1 == at("post W1"));
  REQUIRE(seen_grad.size() == 1);
  CHECK(seen_grad[0] == w1.grad().data()(0, 0));  // what the hook saw is what .grad ends as
  // Reference: the same loss without hooks gives a tenth of that gradient.
  Variable64 w1b = leaf(Tensor<double>(w1.data()), "W1b");
  (zg::sum(zg::matmul(zg::tanh(zg::matmul(x, w1b)), w2)) + zg::sum(w1b * w1b)).backward();
  CHECK(w1.grad().data()(1, 0) == doctest::Approx(10 * w1b.grad().data()(1, 0)).epsilon(1e-12));
  // grad() writes no .grad, so no post-accumulate hook fires.
  events.clear();
  zg::grad(zg::sum(w1 * x), {w1});
  CHECK(std::count(events.begin(), events.end(), "post W1") == 0);
  CHECK(std::count(events.begin(), events.end(), "pre W1") == 1);
}

TEST_CASE("hooks: under create_graph the hook's result is differentiated through") {
  // y = x^2 with a hook g -> g * y: d sum(y) / dx = 2x * x^2 = 2x^3, whose derivative is 6x^2.
  Variable64 x = leaf(Tensor<double>{0.5, -1.5}, "x");
  const Variable64 y = zg::square(x);
  HookHandle hook = y.register_hook([y](const Variable64& g) { return g * y; });
  GradOptions o;
  o.create_graph = true;
  o.retain_graph = true;
  const Variable64 g = zg::grad(zg::sum(y), {x}, {}, o)[0];
  // The hook runs in every pass through y: g = 2xy, and the gradient reaching
  // y from sum(g) is 2x, which the hook makes 2xy: 2y + 2xy * 2x = 2x^2 + 4x^4.
  const Variable64 with_hook = zg::grad(zg::sum(g), {x}, {}, o)[0];
  hook.remove();
  const Variable64 gg = zg::grad(zg::sum(g), {x})[0];
  for (std::size_t i = 0; i < 2; ++i) {
    const double xi = x.data()(i);
    CHECK(g.data()(i) == doctest::Approx(2 * xi * xi * xi).epsilon(1e-12));
    CHECK(with_hook.data()(i) == doctest::Approx(2 * xi * xi + 4 * xi * xi * xi * xi).epsilon(1e-12));
    CHECK(gg.data()(i) == doctest::Approx(6 * xi * xi).epsilon(1e-12));
  }
}

TEST_CASE("hooks: bad registrations and bad replacements are clear errors") {
  Variable64 x = leaf(Tensor<double>{1.0, 2.0}, "x");
  const Variable64 c(Tensor<double>{1.0}, "c");
  CHECK(message_of<zg::Error>([&] { c.register_hook([](const Variable64& g) { return g; }); }) ==
        "register_hook: 'c' does not require grad, so no gradient reaches it");
  const Variable64 y = x * 2.0;
  CHECK(message_of<zg::Error>([&] { y.register_post_accumulate_grad_hook([](const Variable64&) {}); })
            .find("is not a leaf that requires grad") != std::string::npos);
  y.register_hook([](const Variable64&) { return Variable64(Tensor<double>{1.0, 2.0, 3.0}); });
  CHECK(message_of<zg::Error>([&] { zg::sum(y).backward(); }) ==
        "hook on '': returned a gradient of shape (3) for a gradient of shape (2)");
  HookHandle dangling;
  {
    Variable64 t = leaf(Tensor<double>{1.0}, "t");
    dangling = t.register_hook([](const Variable64& g) { return g; });
  }
  dangling.remove();  // its Variable is gone: nothing to do
}
