// The backward engine: order, accumulation, release, create_graph, no_grad,
// validation, observers, deep graphs and graph export.
#include <cmath>
#include <thread>

#include <malloc.h>

#include "engine/buffer_cache.hpp"  // library-private; the tests see autograd/src
#include "testing.hpp"

using namespace zg;
using zg::testing::message_of;
using V = std::vector<Variable64>;

TEST_CASE("diamond graph: each Function runs once, after all its output grads") {
  Variable64 x(2.0, "x");
  x.requires_grad_();
  auto a = zg::square(x);
  auto y = zg::square(a) + zg::square(a);
  CHECK(y.item() == 32);
  std::vector<std::string> order;
  Variable64::BackwardOptions o;
  o.observer = [&](const BackwardStep<double>& s) { order.push_back(s.function.name()); };
  y.backward(o);
  CHECK(x.grad().item() == 64);
  REQUIRE(order.size() == 4);
  CHECK(order.front() == "Add");
  CHECK(order.back() == "Square");  // a's creator runs last, once
}

TEST_CASE("x + x, x * x and one Variable reused many times") {
  Variable64 x(3.0);
  x.requires_grad_();
  (x + x).backward();
  CHECK(x.grad().item() == 2);
  x.cleargrad();
  (x * x).backward();
  CHECK(x.grad().item() == 6);
  x.cleargrad();
  auto y = x * x * x + x * 2.0 + x;  // 3x^2 + 3
  y.backward();
  CHECK(x.grad().item() == 30);
}

TEST_CASE("leaf gradients accumulate over backward calls until cleared") {
  Variable64 x(3.0);
  x.requires_grad_();
  (x * x).backward();
  auto first = x.grad();
  (x * x).backward();
  CHECK(x.grad().item() == 12);
  CHECK(first.item() == 6);  // accumulated into a new array, not in place
  x.cleargrad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("retain_grad keeps intermediate gradients, off by default") {
  Variable64 x(2.0);
  x.requires_grad_();
  auto a = x * 3.0;
  auto y = a * a;
  SUBCASE("off") {
    y.backward();
    CHECK_FALSE(a.grad().defined());
    CHECK_FALSE(y.grad().defined());
  }
  SUBCASE("on") {
    Variable64::BackwardOptions o;
    o.retain_grad = true;
    y.backward(o);
    CHECK(a.grad().item() == 12);
    CHECK(y.grad().item() == 1);
  }
  CHECK(x.grad().item() == 36);
}

TEST_CASE("the graph is freed after backward unless retained") {
  Variable64 x(2.0);
  x.requires_grad_();
  auto y = zg::square(x) * 3.0;
  SUBCASE("freed") {
    y.backward();
    CHECK(y.creator()->released());
    CHECK(y.creator()->inputs().empty());
    const std::string msg = message_of<Error>([&] { y.backward(); });
    CHECK(msg.find("MulConst") != std::string::npos);
    CHECK(msg.find("retain_graph") != std::string::npos);
    // A failed backward leaves nothing behind: asking again gives the same error.
    CHECK(message_of<Error>([&] { y.backward(); }) == msg);
    CHECK(message_of<Error>([&] { (y + 1.0).backward(); }) == msg);
  }
  SUBCASE("retained") {
    Variable64::BackwardOptions o;
    o.retain_graph = true;
    y.backward(o);
    y.backward(o);
    CHECK(x.grad().item() == 24);
  }
}

TEST_CASE("create_graph: second derivative of x^4 - 2x^2 at 2 is 44") {
  Variable64 x(2.0, "x");
  x.requires_grad_();
  auto y = zg::pow(x, 4.0) - 2.0 * zg::square(x);
  Variable64::BackwardOptions o;
  o.create_graph = true;
  y.backward(o);
  auto gx = x.grad();
  CHECK(gx.item() == doctest::Approx(24));
  REQUIRE(gx.requires_grad());
  x.cleargrad();
  gx.backward();
  CHECK(x.grad().item() == doctest::Approx(44));
}

TEST_CASE("NoGradGuard: nothing recorded, thread-local") {
  Variable64 x(2.0);
  x.requires_grad_();
  {
    NoGradGuard no_grad;
    auto y = x * x;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.creator() == nullptr);
    CHECK(message_of<Error>([&] { y.backward(); }).find("does not require grad") != std::string::npos);
    bool other_thread_records = false;
    std::thread t([&] { other_thread_records = (x * x).requires_grad(); });
    t.join();
    CHECK(other_thread_records);
  }
  CHECK((x * x).requires_grad());
  Variable64 constant(3.0);
  CHECK_FALSE((constant * constant).requires_grad());  // no input requires grad
}

TEST_CASE("seed gradient: default ones, shape checked") {
  Variable64 x({1.0, 2.0, 3.0});
  x.requires_grad_();
  auto y = x * 2.0;
  Variable64::BackwardOptions o;
  o.seed = Variable64({1.0, 10.0, 100.0});
  o.retain_graph = true;
  y.backward(o);
  CHECK(x.grad().data() == Tensor<double>({2, 20, 200}));
  o.seed = Variable64({1.0, 2.0});
  CHECK(message_of<ShapeError>([&] { y.backward(o); }) ==
        "backward: seed gradient has shape (2) but the output has shape (3)");
}

namespace {
// Returns a gradient of the wrong shape: the engine must name it.
struct BadShapeGrad final : Function<double> {
  std::string name() const override { return "BadShapeGrad"; }
  Outputs<double> forward(const TensorList<double>& x) override { return Tensor<double>(x[0] * 2.0); }
  Variables<double> backward(const Variables<double>&) override { return {Variable64({1.0, 2.0})}; }
};
// Two outputs: (x * 2, x * 3).
struct TwoOutputs final : Function<double> {
  std::string name() const override { return "TwoOutputs"; }
  Outputs<double> forward(const TensorList<double>& x) override {
    std::vector<Tensor<double>> ys;
    ys.emplace_back(x[0] * 2.0);
    ys.emplace_back(x[0] * 3.0);
    return ys;
  }
  Variables<double> backward(const Variables<double>& gy) override { return {gy[0] * 2.0 + gy[1] * 3.0}; }
};
}  // namespace

TEST_CASE("every returned gradient is validated against its input") {
  Variable64 x({1.0, 2.0, 3.0});
  x.requires_grad_();
  auto y = apply<double>(std::make_shared<BadShapeGrad>(), {x})[0];
  CHECK(message_of<ShapeError>([&] { zg::sum(y).backward(); }) ==
        "BadShapeGrad: backward returned a gradient of shape (2) for input 0 of shape (3)");
}

TEST_CASE("multiple outputs: an unused output contributes zeros") {
  Variable64 x({1.0, 2.0});
  x.requires_grad_();
  auto ys = apply<double>(std::make_shared<TwoOutputs>(), {x});
  REQUIRE(ys.size() == 2);
  CHECK(ys[1].data() == Tensor<double>({3, 6}));
  SUBCASE("both used") {
    zg::sum(ys[0] + ys[1]).backward();
    CHECK(x.grad().data() == Tensor<double>({5, 5}));
  }
  SUBCASE("second only, first dropped") {
    auto second = ys[1];
    ys.clear();
    zg::sum(second).backward();
    CHECK(x.grad().data() == Tensor<double>({3, 3}));
  }
}

namespace {
// 2 x + 1, its output built with Outputs(xs, make) and then written, as
// matmul does (Note [Outputs in place]); throws after building it when asked.
struct InPlaceAffine final : Function<double> {
  bool fail = false;
  static inline const Tensor<double>* built = nullptr;  // the array object the last forward wrote
  std::string name() const override { return "InPlaceAffine"; }
  Outputs<double> forward(const TensorList<double>& x) override {
    Outputs<double> y = x[0] * 2.0;
    y[0] += 1.0;
    built = &y[0];
    if (fail) throw ValueError("InPlaceAffine: asked to fail");
    return y;
  }
  Variables<double> backward(const Variables<double>& gy) override { return {gy[0] * 2.0}; }
};
}  // namespace

TEST_CASE("outputs in place: built in the graph node, recorded or not, and outside the engine") {
  Variable64 x({1.0, -2.0, 3.0});
  const Tensor<double> want = {3.0, -3.0, 7.0};
  const auto f = std::make_shared<InPlaceAffine>();
  SUBCASE("unrecorded") {
    const Variable64 y = apply<double>(f, {x})[0];
    CHECK(&y.data() == InPlaceAffine::built);  // the very array forward wrote: not moved
    CHECK(y.data() == want);
    CHECK_FALSE(y.creator());
    const Variable64 on_stack = apply1<InPlaceAffine>({x});  // Note [Unrecorded ops]
    CHECK(&on_stack.data() == InPlaceAffine::built);
    CHECK(on_stack.data() == want);
  }
  SUBCASE("recorded: the graph links it and the gradient flows") {
    x.requires_grad_();
    Variable64 y = apply<double>(f, {x})[0];
    CHECK(&y.data() == InPlaceAffine::built);
    CHECK(y.data() == want);
    REQUIRE(y.creator());
    CHECK(y.creator()->output(0).id() == y.id());
    // A consumer that keeps no inputs: the in-place node is freed with its handle.
    Variable64 z = y + 1.0;
    const std::weak_ptr<Node<double>> watched = y.node();
    y = Variable64();
    CHECK(watched.expired());
    zg::sum(z).backward();
    CHECK(x.grad().data() == Tensor<double>({2.0, 2.0, 2.0}));
    const auto report = gradcheck([](const V& v) { return apply1<InPlaceAffine>({v[0]}); }, {x});
    CHECK(report.passed);
  }
  SUBCASE("forward throws after building it") {
    x.requires_grad_();
    f->fail = true;
    CHECK(message_of<ValueError>([&] { apply<double>(f, {x}); }) == "InPlaceAffine: asked to fail");
  }
  SUBCASE("forward called outside the engine holds the array itself") {
    const Tensor<double>* arrays[] = {&x.data()};
    Outputs<double> ys = f->forward(TensorList<double>(arrays, 1));
    REQUIRE(ys.size() == 1);
    CHECK(ys[0] == want);
    CHECK(message_of<ValueError>([&] { ys[1]; }) == "Outputs: no output 1 among 1");
    CHECK(message_of<ValueError>([] { Outputs<double>()[0]; }) == "Outputs: no output 0 among 0");
  }
}

// Note [Output nodes]'s promise: an intermediate nobody holds is freed at once, and
// its Node's memory with it: recorded outputs, built in place or not, are
// allocated apart from the count that their creator's weak reference keeps.
// Allocated as one block (make_shared), each dead Node of this chain would
// stay, and the graph would hold over 500 bytes per op.
TEST_CASE("a recorded chain holds its Functions, not the Nodes of freed intermediates") {
  if (!detail::buffer_cache_enabled()) return;  // AddressSanitizer's allocator: mallinfo2 sees none of it
  Variable64 x(1.0);
  x.requires_grad_();
  constexpr std::size_t n = 10000;
  Variable64 y = x;
  const std::size_t before = mallinfo2().uordblks;
  for (std::size_t i = 0; i < n; ++i) y = y * 1.0001;  // MulConst keeps no inputs: each y before is freed
  const std::size_t held = mallinfo2().uordblks - before;
  CAPTURE(held / n);
  CHECK(held < n * 400);  // 240 bytes per op measured
  zg::sum(y).backward();
  CHECK(x.grad().item() == doctest::Approx(std::pow(1.0001, double(n))));
}

TEST_CASE("the step observer sees upstream and sent gradients") {
  Variable64 a(100.0, "apple"), n(2.0, "num");
  a.requires_grad_();
  n.requires_grad_();
  auto price = a * n;
  int steps = 0;
  Variable64::BackwardOptions o;
  o.observer = [&](const BackwardStep<double>& s) {
    ++steps;
    CHECK(s.function.name() == "Mul");
    CHECK(s.inputs.size() == 2);
    CHECK(s.outputs[0].item() == 200);
    CHECK(s.output_grads[0].item() == 1);
    CHECK(s.input_grads[0].item() == 2);    // upstream times the other input
    CHECK(s.input_grads[1].item() == 100);
  };
  price.backward(o);
  CHECK(steps == 1);
}

TEST_CASE("the forward observer sees each Function as it runs") {
  Variable64 a(3.0), b(4.0);
  std::vector<std::string> seen;
  {
    ForwardObserverGuard<double> guard([&](const ForwardStep<double>& s) {
      seen.push_back(s.function.name() + "=" + std::to_string(s.outputs[0].item()));
    });
    auto c = a * b + a;
  }
  auto d = a * b;  // the guard is gone
  CHECK(seen == std::vector<std::string>{"Mul=12.000000", "Add=15.000000"});
}

TEST_CASE("a chain of 1,000,000 ops: backward and teardown without recursion") {
  Variable x(1.0f);
  x.requires_grad_();
  {
    Variable y = x;
    for (int i = 0; i < 1'000'000; ++i) y = (i % 2) ? y + 0.0f : y * 1.0f;
    CHECK(y.generation() == 1'000'000);
    y.backward();
    CHECK(x.grad().item() == 1.0f);
  }  // y and its chain are destroyed here
  {
    Variable y = x;
    for (int i = 0; i < 1'000'000; ++i) y = y * 1.0f;
  }  // destroyed without backward
  SUBCASE("under NoGradGuard no graph is held") {
    NoGradGuard no_grad;
    Variable y = x;
    for (int i = 0; i < 1000; ++i) y = y * 1.0f;
    CHECK(y.creator() == nullptr);
    CHECK(y.generation() == 0);
  }
}

TEST_CASE("to_dot draws Variables, Functions and data-flow edges") {
  Variable64 a(100.0, "apple"), n(2.0, "num");
  a.requires_grad_();
  n.requires_grad_();
  auto price = (a * n).set_name("price");
  DotOptions o;
  o.show_values = true;
  const std::string dot = to_dot(price, o);
  CHECK(dot.find("digraph") == 0);
  CHECK(dot.find("apple") != std::string::npos);
  CHECK(dot.find("price") != std::string::npos);
  CHECK(dot.find("Mul") != std::string::npos);
  CHECK(dot.find("= 200") != std::string::npos);
  CHECK(dot.find("shape=box") != std::string::npos);
  CHECK(dot.find("n0 [") != std::string::npos);
  CHECK(dot.find("-> n0;") != std::string::npos);  // the Function points at its output
}

TEST_CASE("to_dot writes constants as people do (0.5, not 0.500000) and -0 as 0") {
  Variable64 x(-0.0, "x");
  x.requires_grad_();
  auto y = (x * 0.5 + 1.0001).set_name("y");
  DotOptions o;
  o.show_values = true;
  const std::string dot = to_dot(y, o);
  CHECK(dot.find("c=0.5\"") != std::string::npos);
  CHECK(dot.find("c=1.0001\"") != std::string::npos);
  CHECK(dot.find("0.500000") == std::string::npos);
  CHECK(dot.find("x = 0\"") != std::string::npos);
  CHECK(dot.find("-0") == std::string::npos);
}

TEST_CASE("float and double convert only explicitly") {
  Variable a({1.5f, 2.5f});
  Variable64 b = a.to<double>();
  CHECK(b.data() == Tensor<double>({1.5, 2.5}));
  CHECK(b.to<float>().data() == a.data());
  CHECK_FALSE(b.requires_grad());
}

TEST_CASE("gradcheck catches a wrong backward and a trivially zero one") {
  struct WrongSquare final : Function<double> {
    std::string name() const override { return "WrongSquare"; }
    Outputs<double> forward(const TensorList<double>& x) override { return Tensor<double>(x[0] * x[0]); }
    Variables<double> backward(const Variables<double>& gy) override { return {gy[0] * input(0)}; }  // misses 2
  };
  V x = {zg::testing::uniform({2, 3}, 0.5, 2.0, 3)};
  auto wrong = gradcheck([](const V& v) { return apply<double>(std::make_shared<WrongSquare>(), {v[0]})[0]; }, x);
  CHECK_FALSE(wrong.passed);
  CHECK(wrong.analytic == doctest::Approx(wrong.numeric / 2).epsilon(1e-6));
  CHECK(zg::testing::str(wrong).find("FAILED") != std::string::npos);
  auto constant = gradcheck([](const V& v) { return v[0] * 0.0; }, x);
  CHECK_FALSE(constant.passed);
  CHECK(constant.reason.find("zero") != std::string::npos);
}

TEST_CASE("numerical_gradient as in the book") {
  Variable x({3.0f, 4.0f});
  auto g = numerical_gradient<float>([&] { return x.data()(0) * x.data()(0) + x.data()(1) * x.data()(1); }, x);
  CHECK(g(0) == doctest::Approx(6.0).epsilon(1e-2));
  CHECK(g(1) == doctest::Approx(8.0).epsilon(1e-2));
  CHECK(x.data() == Tensor<float>({3, 4}));
}

TEST_CASE("empty Variables are reported, not dereferenced") {
  Variable empty;
  CHECK_FALSE(empty.defined());
  CHECK(message_of<Error>([&] { empty.data(); }).find("empty Variable") != std::string::npos);
  Variable x(1.0f);
  CHECK(message_of<Error>([&] { x + empty; }).find("Add: input 1 is an empty Variable") == 0);
  CHECK(message_of<ValueError>([&] { Variable({1.f, 2.f}).item(); }).find("Variable::item") == 0);
}

namespace {
// Identity whose backward first runs a whole nested backward pass (on a
// graph that shares Functions with the outer pass), or throws when asked.
struct NestedBackward final : Function<double> {
  std::function<void()> inside;
  std::string name() const override { return "NestedBackward"; }
  Outputs<double> forward(const TensorList<double>& x) override { return Tensor<double>(x[0]); }
  Variables<double> backward(const Variables<double>& gy) override {
    if (inside) inside();
    return {gy[0]};
  }
};
}  // namespace

TEST_CASE("a backward run from inside a backward reaches Functions the outer pass has pending") {
  // loss = N(a) + a * 3 with a = x * 2. The outer pass runs Mul(3) before N
  // (insertion order), so a's creator is pending in the outer pass when N's
  // backward runs a nested pass from a * 5 down through it.
  Variable64 x(1.5);
  x.requires_grad_();
  Variable64 a = x * 2.0;
  auto n = std::make_shared<NestedBackward>();
  Variable64 nested_grad;
  n->inside = [&] {
    EnableGradGuard record;  // backward runs under no-grad; this pass builds a graph
    Variable64 leaf(1.5);
    leaf.requires_grad_();
    Variable64 other = a * 5.0 + leaf;  // d/dx = 10 through a's creator
    BackwardOptions<double> keep;
    keep.retain_graph = true;  // a's creator must survive for the outer pass
    other.backward(keep);
    nested_grad = x.grad();
    x.cleargrad();
  };
  Variable64 loss = apply<double>(n, {a})[0] + a * 3.0;
  loss.backward();
  REQUIRE(nested_grad.defined());
  CHECK(nested_grad.item() == doctest::Approx(10.0));
  CHECK(x.grad().item() == doctest::Approx(8.0));  // (3 + 1) * 2
}

TEST_CASE("an output saved only by its consumer is freed once that consumer's backward ran") {
  // z = y * y with y = N(x): Mul's backward is the last use of y, so y is
  // gone by the time N's backward runs, unless retain_grad asks for it.
  for (const bool retain : {false, true}) {
    CAPTURE(retain);
    Variable64 x({1.0, 2.0});
    x.requires_grad_();
    auto n = std::make_shared<NestedBackward>();
    Variable64 y = apply<double>(n, {x})[0];
    std::weak_ptr<Node<double>> watched = y.node();
    bool alive_in_n = true;
    n->inside = [&] { alive_in_n = !watched.expired(); };
    Variable64 z = zg::sum(y * y);
    y = Variable64();
    BackwardOptions<double> options;
    options.retain_grad = retain;
    z.backward(options);
    CHECK(alive_in_n == retain);
    CHECK(x.grad().data() == Tensor<double>({2.0, 4.0}));  // d sum(x^2) = 2x
  }
}

TEST_CASE("after a backward that threw, the same graph differentiates again") {
  Variable64 x({1.0, 2.0});
  x.requires_grad_();
  auto n = std::make_shared<NestedBackward>();
  n->inside = [] { throw ValueError("NestedBackward: asked to fail"); };
  Variable64 y = zg::sum(apply<double>(n, {x * 2.0})[0] * x);
  BackwardOptions<double> keep;
  keep.retain_graph = true;
  CHECK_THROWS_AS(y.backward(keep), ValueError);
  x.cleargrad();
  n->inside = nullptr;
  y.backward(keep);  // the Functions the failed pass left pending are free again
  // y = sum(2x * x) = sum(2 x^2): dy/dx = 4x
  CHECK(x.grad().data() == Tensor<double>({4.0, 8.0}));
  x.cleargrad();
  y.backward();
  CHECK(x.grad().data() == Tensor<double>({4.0, 8.0}));
}

// As Note [Saved inputs] says, a Function whose backward needs only its inputs'
// shapes keeps no reference to them, so an intermediate nobody holds is freed.
TEST_CASE("an intermediate consumed only by shape-only Functions is freed as soon as its handle goes") {
  Variable64 x({1.0, 2.0, 3.0});
  x.requires_grad_();
  Variable64 y = x * 2.0;
  std::weak_ptr<Node<double>> watched = y.node();
  y = y + 1.0;  // AddConst saves no inputs: x * 2's node goes now
  CHECK(watched.expired());
  Variable64 z = zg::exp(y);
  watched = z.node();
  z = z * z;  // Mul saves its inputs: exp's node stays for backward
  CHECK_FALSE(watched.expired());
  zg::sum(z).backward();
  // d/dx exp(2x + 1)^2 = 4 exp(2 (2x + 1))
  for (std::size_t i = 0; i < 3; ++i)
    CHECK(x.grad().data()(i) == doctest::Approx(4.0 * std::exp(2.0 * (2.0 * (i + 1.0) + 1.0))));
  // The graph still reaches x through the freed node; the Function knows its shape.
  Variable64 w = (x * 3.0) - 1.0;
  CHECK(w.creator()->input_shape(0) == Shape{3});
  CHECK(w.creator()->input_creator(0) != nullptr);
  CHECK_FALSE(w.creator()->inputs()[0].defined());
  CHECK(message_of<Error>([&] { w.creator()->input(0); }).find("does not save its inputs") != std::string::npos);
}

TEST_CASE("indexing, concat, split and average pooling keep only their inputs' shapes") {
  using F = std::function<Variable64(const Variable64&)>;
  namespace nnf = zg::nn::functional;
  const std::vector<std::pair<std::string, F>> cases = {
      {"get_item", [](const Variable64& y) { return zg::get_item(y, {1}); }},
      {"get_item_grad", [](const Variable64& y) { return zg::get_item_grad(y, {1}, {3, 2, 2, 4, 4}); }},
      {"concat", [](const Variable64& y) { return zg::concat(std::vector<Variable64>{y, y * 3.0}, 1); }},
      {"split", [](const Variable64& y) { return zg::split(y, std::vector<std::size_t>{1, 3}, 2)[1]; }},
      {"avg_pool2d", [](const Variable64& y) { return nnf::avg_pool2d(y, 2, 2); }},
  };
  for (const auto& c : cases) {
    CAPTURE(c.first);
    Variable64 x(zg::testing::uniform({2, 2, 4, 4}, 0.5, 2.0, 21).data());
    x.requires_grad_();
    Variable64 y = x * 2.0;
    std::weak_ptr<Node<double>> watched = y.node();
    Variable64 z = c.second(y);
    y = Variable64();
    CHECK(watched.expired());  // only the op held y, and it keeps its shape, not y
    const V xs = {zg::testing::uniform({2, 2, 4, 4}, 0.5, 2.0, 22, true)};
    const auto f = [&](const V& v) { return zg::sum(zg::square(c.second(v[0] * 2.0))); };
    const auto first = gradcheck(f, xs);  // the input is an intermediate: its edge has no saved Variable
    CHECK_MESSAGE(first.passed, zg::testing::str(first));
    const auto second = gradgradcheck(f, xs);
    CHECK_MESSAGE(second.passed, zg::testing::str(second));
  }
}

TEST_CASE("ops that reuse their output in backward recompute it when a shape-only consumer freed it") {
  using F = std::function<Variable64(const V&)>;
  const std::vector<std::pair<std::string, F>> cases = {
      {"exp", [](const V& v) { return zg::sum(zg::exp(v[0]) + 1.0); }},
      {"sqrt", [](const V& v) { return zg::sum(zg::sqrt(v[0]) * 2.0); }},
      {"tanh", [](const V& v) { return zg::sum(-zg::tanh(v[0])); }},
      {"sigmoid", [](const V& v) { return zg::sum(zg::sigmoid(v[0]) - v[0]); }},
      {"softmax", [](const V& v) { return zg::sum((zg::softmax(v[0]) * 3.0) * v[0]); }},
      {"log_softmax", [](const V& v) { return zg::sum((zg::log_softmax(v[0]) + 0.5) * v[0]); }},
      {"logsumexp", [](const V& v) { return zg::sum(zg::logsumexp(v[0], {1}) * 2.0); }},
  };
  const V x = {zg::testing::uniform({2, 3}, 0.5, 2.0, 11)};
  for (const auto& c : cases) {
    CAPTURE(c.first);
    const auto first = gradcheck(c.second, x);
    CHECK_MESSAGE(first.passed, zg::testing::str(first));
    const auto second = gradgradcheck(c.second, x);  // create_graph through the recomputed output
    CHECK_MESSAGE(second.passed, zg::testing::str(second));
  }
}

TEST_CASE("to_dot draws a freed intermediate as a dashed placeholder with its shape") {
  Variable64 x({1.0, 2.0}, "x");
  x.requires_grad_();
  Variable64 y = ((x * 2.0) + 1.0).set_name("y");  // x * 2 is freed
  const std::string dot = to_dot(y);
  CHECK(dot.find("label=\"(2)\\nfreed\"") != std::string::npos);
  CHECK(dot.find("MulConst") != std::string::npos);
  CHECK(dot.find("AddConst") != std::string::npos);
  CHECK(dot.find("style=dashed") != std::string::npos);
}

TEST_CASE("KeepIntermediatesGuard keeps every input, for narrating and drawing, it is thread-local") {
  Variable64 x({1.0, 2.0});
  x.requires_grad_();
  Variable64 y;
  std::weak_ptr<Node<double>> watched;
  {
    KeepIntermediatesGuard keep;
    Variable64 h = x * 2.0;
    watched = h.node();
    y = h + 1.0;
    bool other_thread = true;
    std::thread([&] { other_thread = is_keep_intermediates_enabled(); }).join();
    CHECK_FALSE(other_thread);
  }
  CHECK_FALSE(is_keep_intermediates_enabled());
  CHECK_FALSE(watched.expired());  // y's AddConst saved it
  CHECK(y.creator()->input(0).data() == Tensor<double>({2.0, 4.0}));
  CHECK(to_dot(y).find("freed") == std::string::npos);
  zg::sum(y).backward();
  CHECK(x.grad().data() == Tensor<double>({2.0, 2.0}));
  CHECK(watched.expired());  // backward released the graph
}

TEST_CASE("buffer cache: a dead array's buffer serves the next array of that size") {
  const Variable a(Tensor<float>(xt::ones<float>({100, 50}))), b(Tensor<float>(xt::ones<float>({50, 10})));
  const float* buffer = nullptr;
  {
    const Variable y = zg::matmul(a, b);
    buffer = y.data().data();
  }
  {
    const Variable y = zg::matmul(a, b);
    if (detail::buffer_cache_enabled()) CHECK(y.data().data() == buffer);  // off under AddressSanitizer
    CHECK(y.data() == Tensor<float>(50 * xt::ones<float>({100, 10})));
  }
  // The same 1000 elements in another shape: the strides follow the new shape.
  const float* recycled = nullptr;
  Variable x;
  {
    const Variable src(Tensor<float>(xt::arange<float>(-500, 500)));
    recycled = src.data().data();
    x = zg::reshape(src, {10, 100});
  }
  const Variable r = zg::relu(x);
  if (detail::buffer_cache_enabled()) CHECK(r.data().data() == recycled);
  REQUIRE(r.shape() == Shape{10, 100});
  CHECK(r.data().strides()[0] == 100);
  CHECK(r.data().strides()[1] == 1);
  CHECK(r.data()(4, 99) == 0.f);  // -500 + 499
  CHECK(r.data()(5, 1) == 1.f);
  CHECK(r.data()(9, 99) == 499.f);
  // One buffer passed between shapes: each array gets its own shape's
  // strides, whether the slot remembers that shape or not.
  for (const Shape& shape : {Shape{100, 10}, Shape{10, 100}, Shape{10, 100}, Shape{1000}, Shape{1, 1000},
                             Shape{1000, 1}, Shape{1000, 1}, Shape{100, 10}}) {
    CAPTURE(shape_str(shape));
    const Variable y = zg::relu(zg::reshape(x, shape));
    REQUIRE(y.shape() == shape);
    Tensor<float> want = xt::maximum(x.data(), 0.f);
    want.reshape(shape);
    CHECK(y.data() == want);
    std::size_t stride = 1;
    for (std::size_t i = shape.size(); i-- > 0; stride *= shape[i])
      CHECK(static_cast<std::size_t>(y.data().strides()[i]) == (shape[i] == 1 ? 0 : stride));
  }
}

TEST_CASE("buffer cache: threads that end with cached arrays, and arrays that outlive the cache") {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t] {
      // Constructed before this thread's cache, so destroyed after it: its
      // array must not go to the dead cache.
      thread_local Variable outlives;
      Variable w(Tensor<float>(xt::ones<float>({64, 32})));
      w.requires_grad_();
      for (int i = 0; i < 20; ++i) {
        w.cleargrad();
        zg::sum(zg::relu(zg::matmul(Variable(Tensor<float>(xt::ones<float>({16, 64}) * float(t))), w))).backward();
      }
      CHECK(w.grad().data()(0, 0) == 16.f * float(t) * float(t > 0));
      outlives = zg::matmul(w, Variable(Tensor<float>(xt::ones<float>({32, 16}))));
    });
  for (std::thread& th : threads) th.join();
}

TEST_CASE("teardown: a long graph in a thread_local Variable, freed at thread exit") {
  // The Variable dies after the thread's teardown worklist: the chain is
  // freed through a worklist on the stack, without recursion.
  std::thread([] {
    thread_local Variable64 chain;
    Variable64 x(1.0);
    x.requires_grad_();
    Variable64 y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.0 + 0.0;
    chain = y;
  }).join();
  std::thread([] {
    thread_local Variable64 chain;
    Variable64 y(1.0);
    y.requires_grad_();
    chain = y * 2.0;
    (void)Variable64(zg::sum(chain));  // the worklist exists before chain dies
  }).join();
}

TEST_CASE("Variables from nested lists: any depth up to four, a column, ragged lists refused") {
  const Variable64 column({{1.}, {2.}, {3.}});
  CHECK(column.shape() == Shape{3, 1});
  CHECK(column.data()(2, 0) == 3.0);
  const Variable row({1, 2, 3});  // ints become floats
  CHECK(row.shape() == Shape{3});
  CHECK(Variable64({1.5}).shape() == Shape{1});  // a list, not the scalar constructor
  CHECK(Variable64({{{1.}}, {{2.}}}).shape() == Shape{2, 1, 1});
  CHECK(Variable64({{{{1., 2.}}}}).shape() == Shape{1, 1, 1, 2});
  CHECK(message_of<ShapeError>([] { Variable64({{1., 2.}, {3.}}); }) ==
        "Variable: a nested list with rows of 2 and of 1 values at depth 1");
}
