// Optimizers: one step of each by hand from the book's formulas (docs/book.md), several steps
// against a plain reference written here, the hooks (weight decay, clipping,
// freezing) by value, state_dict errors and a bit-identical resume.
#include <cmath>
#include <functional>
#include <memory>

#include <zerograd/optim.hpp>

#include "testing.hpp"

using namespace zg;
using namespace zg::optim;
using zg::testing::message_of;

namespace {

Variable param(std::vector<float> values, const std::string& name = "p", Shape shape = {}) {
  if (shape.empty()) shape = {values.size()};
  Tensor<float> t = Tensor<float>::from_shape(shape);
  std::copy(values.begin(), values.end(), t.begin());
  Variable p(std::move(t), name);
  p.requires_grad_();
  return p;
}

void set_grad(const Variable& p, std::vector<float> g) {
  Tensor<float> t = Tensor<float>::from_shape(p.shape());
  std::copy(g.begin(), g.end(), t.begin());
  p.set_grad(Variable(std::move(t)));
}

// eps 0: exactly equal.
void check_values(const Variable& p, std::vector<double> expected, double eps = 1e-6) {
  REQUIRE(p.size() == expected.size());
  for (std::size_t k = 0; k < expected.size(); ++k) {
    CAPTURE(k);
    const float x = p.data().data()[k];
    if (eps == 0) CHECK(x == float(expected[k]));
    else CHECK(x == doctest::Approx(expected[k]).epsilon(eps));
  }
}

const std::vector<float> kP = {1, -2, 3};
const std::vector<float> kG = {0.5, -1, 2};

// p0 + c g, elementwise, for the hand-computed steps below.
std::vector<double> p_plus(double c, const std::vector<float>& g = kG, const std::vector<float>& p = kP) {
  std::vector<double> out;
  for (std::size_t k = 0; k < p.size(); ++k) out.push_back(p[k] + c * g[k]);
  return out;
}

std::vector<float> sign_of(const std::vector<float>& g) {
  std::vector<float> out;
  for (float x : g) out.push_back(x > 0 ? 1 : -1);
  return out;
}

}  // namespace

TEST_CASE("each optimizer's first steps by hand, with the book's defaults") {
  auto p = param(kP);
  set_grad(p, kG);
  SUBCASE("SGD: p -= lr g, lr 0.01") {
    SGD opt({p});
    opt.step();
    check_values(p, p_plus(-0.01));  // [0.995, -1.99, 2.98]
  }
  SUBCASE("Momentum: v = m v - lr g; p += v, lr 0.01, m 0.9") {
    Momentum opt({p});
    opt.step();
    check_values(p, p_plus(-0.01));  // v = -0.01 g
    opt.step();
    check_values(p, p_plus(-0.01 - 0.019));  // v = 0.9 (-0.01 g) - 0.01 g = -0.019 g
    check_values(Variable(opt.state(0, 0)->buffers.at("v")), p_plus(-0.019, kG, {0, 0, 0}));
  }
  SUBCASE("Nesterov: p += m^2 v; p -= (1 + m) lr g; v = m v - lr g") {
    Nesterov opt({p});
    opt.step();
    check_values(p, p_plus(-0.019));  // v was 0: p -= 1.9 * 0.01 g; v = -0.01 g
    opt.step();
    check_values(p, p_plus(-0.019 - 0.0081 - 0.019));  // p += 0.81 (-0.01 g); p -= 0.019 g
  }
  SUBCASE("AdaGrad: h += g^2; p -= lr g / (sqrt(h) + 1e-7)") {
    AdaGrad opt({p});
    opt.step();
    check_values(p, {1 - 0.01 * 0.5 / (0.5 + 1e-7), -2 + 0.01 * 1 / (1 + 1e-7), 3 - 0.01 * 2 / (2 + 1e-7)});
    opt.step();  // h = 2 g^2: p -= 0.01 / sqrt(2) sign(g)
    check_values(p, p_plus(-0.01 - 0.01 / std::sqrt(2.0), sign_of(kG)));
  }
  SUBCASE("RMSprop: h = 0.99 h + 0.01 g^2; p -= lr g / (sqrt(h) + 1e-7)") {
    RMSprop opt({p});
    opt.step();
    check_values(p, {0.9, -1.9, 2.9}, 1e-5);  // sqrt(h) = 0.1 |g|: p -= 0.1 sign(g)
  }
  SUBCASE("Adam: the first step moves each element by lr against the sign of g") {
    Adam opt({p});
    opt.step();  // lr_t = 0.001 sqrt(0.001) / 0.1; m = 0.1 g; v = 0.001 g^2
    check_values(p, {0.999, -1.999, 2.999}, 1e-6);
    check_values(Variable(opt.state(0, 0)->buffers.at("m")), p_plus(0.1, kG, {0, 0, 0}));
    check_values(Variable(opt.state(0, 0)->buffers.at("v")), {0.001 * 0.25, 0.001, 0.004});
    CHECK(opt.state(0, 0)->t == 1);
    opt.step();  // t = 2: m = 0.19 g, v = 0.001999 g^2, lr_t = 0.001 sqrt(1 - 0.999^2) / 0.19
    const double lr_t = 0.001 * std::sqrt(1 - 0.999 * 0.999) / (1 - 0.81);
    const double move = lr_t * 0.19 / std::sqrt(0.001999);
    check_values(p, p_plus(-0.001 - move, sign_of(kG)), 1e-6);
  }
  SUBCASE("AdamW: p *= 1 - lr lambda, then Adam with g alone") {
    p.set_name("fc.weight");
    auto bias = param(kP, "fc.bias");
    set_grad(bias, kG);
    AdamW opt({p, bias}, 0.001f, 0.9f, 0.999f, 0.5f);
    opt.step();
    const double keep = 1 - 0.001 * 0.5;
    check_values(p, {keep * 1 - 0.001, keep * -2 + 0.001, keep * 3 - 0.001}, 1e-6);
    check_values(bias, {0.999, -1.999, 2.999}, 1e-6);  // a bias does not decay
    // decoupled: the decay never reaches the moments (L2 would make m = 0.1 (g + lambda p))
    check_values(Variable(opt.state(0, 0)->buffers.at("m")), p_plus(0.1, kG, {0, 0, 0}), 1e-6);
  }
}

namespace {

// The book's formulas on plain doubles, as straightforwardly as they read.
struct Reference {
  Reference(std::string kind, double lr) : kind(std::move(kind)), lr(lr) {}
  std::string kind;
  double lr;
  std::vector<double> v, h, m, s;
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    if (v.empty()) v = h = m = s = std::vector<double>(p.size(), 0.0);
    ++t;
    for (std::size_t k = 0; k < p.size(); ++k) {
      if (kind == "SGD") {
        p[k] -= lr * g[k];
      } else if (kind == "Momentum") {
        v[k] = 0.9 * v[k] - lr * g[k];
        p[k] += v[k];
      } else if (kind == "Nesterov") {
        p[k] += 0.9 * 0.9 * v[k];
        p[k] -= 1.9 * lr * g[k];
        v[k] = 0.9 * v[k] - lr * g[k];
      } else if (kind == "AdaGrad") {
        h[k] += g[k] * g[k];
        p[k] -= lr * g[k] / (std::sqrt(h[k]) + 1e-7);
      } else if (kind == "RMSprop") {
        h[k] = 0.99 * h[k] + 0.01 * g[k] * g[k];
        p[k] -= lr * g[k] / (std::sqrt(h[k]) + 1e-7);
      } else if (kind == "Adam") {
        const double lr_t = lr * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
        m[k] += 0.1 * (g[k] - m[k]);
        s[k] += 0.001 * (g[k] * g[k] - s[k]);
        p[k] -= lr_t * m[k] / (std::sqrt(s[k]) + 1e-7);
      }
    }
  }
};

std::unique_ptr<Optimizer> make(const std::string& kind, Params params, float lr) {
  if (kind == "SGD") return std::make_unique<SGD>(std::move(params), lr);
  if (kind == "Momentum") return std::make_unique<Momentum>(std::move(params), lr);
  if (kind == "Nesterov") return std::make_unique<Nesterov>(std::move(params), lr);
  if (kind == "AdaGrad") return std::make_unique<AdaGrad>(std::move(params), lr);
  if (kind == "RMSprop") return std::make_unique<RMSprop>(std::move(params), lr);
  if (kind == "Adam") return std::make_unique<Adam>(std::move(params), lr);
  if (kind == "AdamW") return std::make_unique<AdamW>(std::move(params), lr);
  throw std::logic_error(kind);
}

const std::vector<std::string> kKinds = {"SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"};

}  // namespace

TEST_CASE("five steps of each optimizer match a plain reference implementation") {
  for (const auto& kind : kKinds) {
    CAPTURE(kind);
    const double lr = kind == "Adam" ? 0.05 : 0.1;
    auto a = param({0.5f, -1.5f, 2.f}, "a");
    auto b = param({1.f, 2.f, -3.f, 0.25f}, "b", {2, 2});
    std::vector<double> ra = {0.5, -1.5, 2}, rb = {1, 2, -3, 0.25};
    Reference ref_a{kind, lr}, ref_b{kind, lr};
    auto opt = make(kind, {a, b}, float(lr));
    for (int t = 0; t < 5; ++t) {
      std::vector<double> ga, gb;  // a gradient sequence that changes sign and size
      for (int k = 0; k < 3; ++k) ga.push_back(std::sin(0.7 * (t + 1) * (k + 1)) + 0.1 * k);
      for (int k = 0; k < 4; ++k) gb.push_back(std::cos(0.3 * (t + 2) * (k + 1)) * (k + 1));
      set_grad(a, std::vector<float>(ga.begin(), ga.end()));
      set_grad(b, std::vector<float>(gb.begin(), gb.end()));
      opt->step();
      ref_a.step(ra, ga);
      ref_b.step(rb, gb);
    }
    check_values(a, ra, 1e-5);
    check_values(b, rb, 1e-5);
    CHECK(a.data()(0) != doctest::Approx(0.5));  // the parameters did move
  }
}

// Checks Note [Denormals]: a state that decays under zero gradients is stored as 0
// rather than as a subnormal float, which would make every later update of
// that element many times slower.
TEST_CASE("optimizer states decaying under zero gradients never become subnormal") {
  for (const auto& kind : kKinds) {
    CAPTURE(kind);
    auto p = param({1.f, -1.f, 0.5f});
    auto opt = make(kind, {p}, 0.01f);
    set_grad(p, {1.f, -1e-3f, 1e-20f});  // one real step, then nothing
    opt->step();
    int subnormal = 0, steps = 0;
    for (; steps < 3000; ++steps) {
      set_grad(p, {0.f, 0.f, 0.f});
      opt->step();
      const ParamState* state = opt->state(0, 0);
      if (!state) break;  // SGD keeps none
      for (const auto& named : state->buffers)
        for (float x : named.second) subnormal += std::fpclassify(x) == FP_SUBNORMAL;
    }
    CHECK(subnormal == 0);
    for (float x : p.data()) CHECK(std::isfinite(x));
  }
}

TEST_CASE("parameters without a gradient are skipped, state is created on the first update") {
  auto a = param(kP, "a"), b = param(kP, "b");
  Adam opt({a, b});
  set_grad(a, kG);
  opt.step();
  opt.step();
  check_values(b, {1, -2, 3}, 0);
  CHECK(opt.state(0, 1) == nullptr);
  REQUIRE(opt.state(0, 0) != nullptr);
  CHECK(opt.state(0, 0)->t == 2);
  set_grad(b, kG);
  opt.step();
  REQUIRE(opt.state(0, 1) != nullptr);
  CHECK(opt.state(0, 1)->t == 1);  // b's first update is a first Adam step
  check_values(b, {0.999, -1.999, 2.999}, 1e-6);
  CHECK(opt.steps() == 3);
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
}

TEST_CASE("parameter groups have their own lr and weight decay") {
  auto w = param(kP, "fc.weight"), b = param(kP, "fc.bias"), c = param(kP, "c");
  for (auto& p : {w, b, c}) set_grad(p, kG);
  SGD opt({ParamGroup{{w}, 0.1f}, ParamGroup{{b}}, ParamGroup{{c}, 0.5f, 0.2f, true}}, 0.01f);
  CHECK(opt.num_groups() == 3);
  CHECK(opt.lr(0) == 0.1f);
  CHECK(opt.lr(1) == 0.01f);
  CHECK(opt.weight_decay(2) == 0.2f);
  opt.step();
  check_values(w, p_plus(-0.1));
  check_values(b, p_plus(-0.01));
  check_values(c, {1 - 0.5 * (0.5 + 0.2 * 1), -2 - 0.5 * (-1 + 0.2 * -2), 3 - 0.5 * (2 + 0.2 * 3)});
  opt.set_lr(1, 1.f);
  CHECK(opt.lr(1) == 1.f);
  CHECK(opt.lr(0) == 0.1f);
  CHECK(message_of<ValueError>([&] { opt.lr(3); }).find("no parameter group 3") != std::string::npos);
}

TEST_CASE("weight decay: g + lambda W on weights only, by default") {
  auto w = param(kP, "fc.weight"), W = param(kP, "W"), b = param(kP, "fc.bias");
  auto gamma = param(kP, "bn.gamma"), beta = param(kP, "bn.beta");
  const std::vector<double> decayed = {1 - 0.1 * (0.5 + 0.5 * 1), -2 - 0.1 * (-1 + 0.5 * -2), 3 - 0.1 * (2 + 0.5 * 3)};
  // One gradient array shared by every parameter: it must come out unchanged.
  Variable g(Tensor<float>({0.5f, -1.f, 2.f}));
  for (auto& p : {w, W, b, gamma, beta}) p.set_grad(g);
  SUBCASE("default predicate") {
    SGD opt({w, W, b, gamma, beta}, 0.1f);
    opt.set_weight_decay(0.5f);
    CHECK(opt.decays(0, 0));
    CHECK_FALSE(opt.decays(0, 2));
    opt.step();
    check_values(w, decayed);
    check_values(W, decayed);
    for (const auto& p : {b, gamma, beta}) check_values(p, p_plus(-0.1));
    check_values(g, {0.5, -1, 2}, 0);
  }
  SUBCASE("a predicate of one's own, and groups that force it on or off") {
    SGD opt({ParamGroup{{w}, {}, {}, false}, ParamGroup{{b, gamma}}, ParamGroup{{beta}, {}, {}, true}}, 0.1f);
    opt.set_weight_decay(0.5f);
    opt.set_decay_predicate([](const Variable& p) { return p.name() == "fc.bias"; });
    opt.step();
    check_values(w, p_plus(-0.1));  // group says no
    check_values(b, decayed);       // predicate says yes
    check_values(gamma, p_plus(-0.1));
    check_values(beta, decayed);    // group says yes
  }
  CHECK(message_of<ValueError>([&] { SGD({w}).set_weight_decay(-1.f); }).find("weight_decay must be") !=
        std::string::npos);
}

TEST_CASE("gradient clipping by global norm: scale = max_norm / (norm + 1e-6) when norm > max_norm") {
  auto a = param({1, 1}, "a.weight"), b = param({1, 1}, "b");
  set_grad(a, {3, 0});
  set_grad(b, {0, 4});  // global norm sqrt(9 + 16) = 5
  SGD opt({a, b}, 1.f);
  SUBCASE("norm above max_norm: every gradient scaled by the same factor") {
    opt.set_max_grad_norm(1.f);
    opt.step();
    const double s = 1 / (5 + 1e-6);
    check_values(a, {1 - 3 * s, 1});
    check_values(b, {1, 1 - 4 * s});
    check_values(a.grad(), {3, 0}, 0);  // the gradient array itself is untouched
  }
  SUBCASE("norm below max_norm: unchanged") {
    opt.set_max_grad_norm(10.f);
    opt.step();
    check_values(a, {-2, 1}, 0);
    check_values(b, {1, -3}, 0);
  }
  SUBCASE("clipping first, then weight decay (PyTorch's order)") {
    opt.set_max_grad_norm(1.f);
    opt.set_weight_decay(0.5f);
    opt.step();
    const double s = 1 / (5 + 1e-6);
    check_values(a, {1 - (3 * s + 0.5), 1 - 0.5});
    check_values(b, {1, 1 - 4 * s});
  }
  SUBCASE("the + 1e-6 shows on small gradients") {
    auto x = param({0, 0}, "x");
    set_grad(x, {3e-6f, 4e-6f});
    SGD small({x}, 1.f);
    small.set_max_grad_norm(1e-6f);
    small.step();  // scale = 1e-6 / (5e-6 + 1e-6) = 1/6, not 1/5
    check_values(x, {-0.5e-6, -4e-6 / 6}, 1e-9);
  }
  SUBCASE("frozen parameters do not count in the norm") {
    opt.freeze(b);
    opt.set_max_grad_norm(1.f);
    opt.step();
    check_values(a, {1 - 3 / (3 + 1e-6), 1});
    check_values(b, {1, 1}, 0);
  }
  SUBCASE("max_norm must be > 0") {
    const auto msg = message_of<ValueError>([&] { opt.set_max_grad_norm(0.f); });
    CHECK(msg.find("SGD") != std::string::npos);
    CHECK(msg.find("clipping needs max_norm > 0, got 0") != std::string::npos);
    CHECK(message_of<ValueError>([&] { opt.set_max_grad_norm(-2.f); }).find("got -2") != std::string::npos);
    opt.set_max_grad_norm(std::nullopt);
  }
}

TEST_CASE("frozen parameters are not updated and get no state") {
  auto a = param(kP, "a"), b = param(kP, "b");
  set_grad(a, kG);
  set_grad(b, kG);
  Momentum opt({a, b});
  opt.freeze(a);
  CHECK(opt.frozen(a));
  opt.step();
  check_values(a, {1, -2, 3}, 0);
  CHECK(opt.state(0, 0) == nullptr);
  check_values(b, p_plus(-0.01));
  opt.freeze(a, false);
  opt.step();
  check_values(a, p_plus(-0.01));
  auto stranger = param({1}, "stranger");
  CHECK(message_of<ValueError>([&] { opt.freeze(stranger); }).find("'stranger' is not a parameter") !=
        std::string::npos);
}

TEST_CASE("bad hyperparameters and parameter lists name the optimizer and the value") {
  auto p = param(kP);
  auto has = [](const std::string& msg, const std::string& part) {
    INFO(msg);
    CHECK(msg.find(part) != std::string::npos);
  };
  has(message_of<ValueError>([&] { SGD({p}, -0.1f); }), "SGD: lr must be a finite number >= 0, got -0.1");
  has(message_of<ValueError>([&] { Adam({p}, std::nanf("")); }), "Adam: lr");
  has(message_of<ValueError>([&] { Momentum({p}, 0.01f, 1.f); }), "Momentum: momentum must be in [0, 1), got 1");
  has(message_of<ValueError>([&] { Nesterov({p}, 0.01f, -0.5f); }), "Nesterov: momentum must be in [0, 1), got -0.5");
  has(message_of<ValueError>([&] { RMSprop({p}, 0.01f, 1.5f); }), "RMSprop: decay must be in [0, 1), got 1.5");
  has(message_of<ValueError>([&] { Adam({p}, 0.001f, 0.9f, 1.f); }), "Adam: beta2 must be in [0, 1), got 1");
  has(message_of<ValueError>([&] { AdamW({p}, 0.001f, 0.9f, 0.999f, -1.f); }), "AdamW: weight_decay");
  has(message_of<ValueError>([&] { AdaGrad(std::vector<Variable>{}); }), "AdaGrad: parameter group 0 is empty");
  has(message_of<ValueError>([&] { SGD(std::vector<ParamGroup>{}); }), "SGD: the parameter list is empty");
  has(message_of<ValueError>([&] { SGD({p, p}); }), "appears twice");
  has(message_of<ValueError>([&] { SGD({p}).set_lr(-1.f); }), "got -1");
  has(message_of<ValueError>([&] { SGD({ParamGroup{{p}, -3.f}}); }), "got -3");
}

TEST_CASE("step counts are stored exactly in float32") {
  const std::int64_t big = std::int64_t(1) << 24;  // the first integer after it is not a float32
  for (std::int64_t n : {std::int64_t(0), std::int64_t(1), big + 1, big * big / 256 + 12345}) {
    CAPTURE(n);
    CHECK(decode_count(encode_count(n), "k") == n);
  }
  CHECK(message_of<ValueError>([] { decode_count(Tensor<float>({1.5f, 0.f}), "optimizer.step"); })
            .find("'optimizer.step': not a count") != std::string::npos);
  CHECK(message_of<ShapeError>([] { decode_count(Tensor<float>(3.f), "k"); }).find("has shape (2), got ()") !=
        std::string::npos);
}

namespace {

// A small model's parameters and a loss whose gradient depends on them; c is
// only used from step 7 on, so its state is created after a resume at step 5.
struct Model {
  Variable w = param({0.5f, -1.f, 2.f, 0.3f, 1.2f, -0.7f}, "fc.weight", {2, 3});
  Variable b = param({0.1f, -0.2f, 0.3f}, "fc.bias");
  Variable c = param({1.5f, -2.5f}, "bn.gamma");
  std::vector<Variable> params() const { return {w, b, c}; }
  void backward(int step) const {
    Variable x(Tensor<float>({{1.f, 2.f, -1.f}, {0.5f, -0.3f, 0.8f}}));
    Variable loss = zg::sum(zg::square(w * x - 1.f)) + zg::sum(b * b * b);
    if (step >= 7) loss = loss + zg::sum(zg::square(c) * c);
    loss.backward();
  }
};

// What a checkpoint holds: copies of the model's arrays and the optimizer's.
NamedArrays checkpoint(const Model& m, const Optimizer& opt, const LRScheduler& sched) {
  NamedArrays out = {{"fc.weight", m.w.data()}, {"fc.bias", m.b.data()}, {"bn.gamma", m.c.data()}};
  for (auto& kv : opt.state_dict()) out.push_back(kv);
  for (auto& kv : sched.state_dict()) out.push_back(kv);
  return out;
}

void train(const Model& m, Optimizer& opt, LRScheduler& sched, int from, int to) {
  for (int step = from; step < to; ++step) {
    opt.zero_grad();
    m.backward(step);
    opt.step();
    sched.step();
  }
}

std::unique_ptr<Optimizer> make_for_resume(const std::string& kind, const Model& m) {
  auto opt = make(kind, m.params(), kind == "Adam" || kind == "AdamW" ? 0.01f : 0.05f);
  opt->set_max_grad_norm(3.f);  // the gradients here are larger: clipping is active
  if (kind != "AdamW") opt->set_weight_decay(0.01f);
  return opt;
}

}  // namespace

TEST_CASE("resume: 2N steps equal N steps, state_dict, a new optimizer, load, N steps, bit for bit") {
  const int N = 5;
  for (const auto& kind : {"SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "AdamW"}) {
    CAPTURE(kind);
    Model straight;
    auto opt = make_for_resume(kind, straight);
    LRScheduler sched(*opt, StepLR(3, 0.5));
    train(straight, *opt, sched, 0, 2 * N);

    Model first;
    auto opt1 = make_for_resume(kind, first);
    LRScheduler sched1(*opt1, StepLR(3, 0.5));
    train(first, *opt1, sched1, 0, N);
    const NamedArrays saved = checkpoint(first, *opt1, sched1);

    Model resumed;  // new Variables, filled from the checkpoint as the nn loader will
    for (const auto& [key, a] : saved)
      for (auto& p : resumed.params())
        if (p.name() == key) p.data() = a;
    auto opt2 = make_for_resume(kind, resumed);
    LRScheduler sched2(*opt2, StepLR(3, 0.5));
    opt2->load_state_dict(saved);
    sched2.load_state_dict(saved);
    CHECK(opt2->steps() == N);
    CHECK(opt2->lr() == opt1->lr());
    train(resumed, *opt2, sched2, N, 2 * N);

    CHECK(resumed.w.data() == straight.w.data());
    CHECK(resumed.b.data() == straight.b.data());
    CHECK(resumed.c.data() == straight.c.data());
    CHECK(resumed.w.data() != first.w.data());  // and training did go on
    const auto a = opt->state_dict(), b = opt2->state_dict();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].first == b[i].first);
      CHECK(a[i].second == b[i].second);
    }
  }
}

TEST_CASE("state_dict names and a failed load_state_dict changes nothing") {
  Model m;
  Adam opt(m.params());
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    m.backward(step);
    opt.step();
  }
  const NamedArrays before = opt.state_dict();
  std::vector<std::string> keys;
  for (const auto& kv : before) keys.push_back(kv.first);
  CHECK(keys == std::vector<std::string>{"optimizer.step", "optimizer.0.lr", "optimizer.0.0.t", "optimizer.0.0.m",
                                         "optimizer.0.0.v", "optimizer.0.1.t", "optimizer.0.1.m", "optimizer.0.1.v"});
  CHECK(before[1].second.dimension() == 0);

  auto unchanged = [&] {
    const NamedArrays now = opt.state_dict();
    REQUIRE(now.size() == before.size());
    for (std::size_t i = 0; i < now.size(); ++i) {
      CHECK(now[i].first == before[i].first);
      CHECK(now[i].second == before[i].second);
    }
  };
  // The bad entry comes last, after valid ones a careless loader would already apply.
  auto with = [&](const std::string& key, Tensor<float> a) {
    NamedArrays bad;
    for (const auto& [k, v] : before)
      if (k != key) bad.emplace_back(k, Tensor<float>(v * 0.f + 7.f));
    bad.emplace_back(key, std::move(a));
    return bad;
  };
  SUBCASE("wrong shape: ShapeError naming the key and both shapes") {
    NamedArrays bad = before;
    bad[0].second = encode_count(99);
    bad.back().second = xt::zeros<float>({2, 3});
    const auto msg = message_of<ShapeError>([&] { opt.load_state_dict(bad); });
    CHECK(msg.find("'optimizer.0.1.v' has shape (2, 3), parameter 'fc.bias' has shape (3)") != std::string::npos);
    unchanged();
  }
  SUBCASE("unknown buffer") {
    const auto bad = with("optimizer.0.0.h", xt::zeros<float>({2, 3}));
    const auto msg = message_of<ValueError>([&] { opt.load_state_dict(bad); });
    CHECK(msg.find("unknown key 'optimizer.0.0.h' (Adam keeps m, v)") != std::string::npos);
    unchanged();
  }
  SUBCASE("group or parameter out of range") {
    CHECK(message_of<ValueError>([&] { opt.load_state_dict(with("optimizer.1.lr", Tensor<float>(0.1f))); })
              .find("unknown key 'optimizer.1.lr'") != std::string::npos);
    CHECK(message_of<ValueError>([&] { opt.load_state_dict(with("optimizer.0.3.t", encode_count(1))); })
              .find("unknown key 'optimizer.0.3.t'") != std::string::npos);
    CHECK(message_of<ValueError>([&] { opt.load_state_dict(with("optimizer.00.lr", Tensor<float>(0.1f))); })
              .find("unknown key 'optimizer.00.lr'") != std::string::npos);
    unchanged();
  }
  SUBCASE("bad values") {
    CHECK(message_of<ValueError>([&] { opt.load_state_dict(with("optimizer.0.lr", Tensor<float>(-1.f))); })
              .find("'optimizer.0.lr': lr must be a finite number >= 0, got -1") != std::string::npos);
    CHECK(message_of<ShapeError>([&] { opt.load_state_dict(with("optimizer.0.lr", Tensor<float>({1.f}))); })
              .find("'optimizer.0.lr' has shape (1), expected ()") != std::string::npos);
    CHECK(message_of<ValueError>([&] { opt.load_state_dict(with("optimizer.step", Tensor<float>({0.f, -1.f}))); })
              .find("'optimizer.step': not a count") != std::string::npos);
    unchanged();
  }
  SUBCASE("missing entries") {
    NamedArrays bad(before.begin(), before.end() - 1);
    CHECK(message_of<ValueError>([&] { opt.load_state_dict(bad); }).find("missing key 'optimizer.0.1.v'") !=
          std::string::npos);
    CHECK(message_of<ValueError>([&] { opt.load_state_dict({}); }).find("missing key 'optimizer.step'") !=
          std::string::npos);
    unchanged();
  }
  SUBCASE("another optimizer's state") {
    Momentum other(m.params());
    CHECK(message_of<ValueError>([&] { other.load_state_dict(before); }).find("(Momentum keeps v)") !=
          std::string::npos);
    CHECK(other.state(0, 0) == nullptr);
  }
  SUBCASE("the model's own arrays in the same list are ignored") {
    NamedArrays all = {{"fc.weight", m.w.data()}};
    for (const auto& kv : before) all.push_back(kv);
    Adam fresh(m.params());
    fresh.load_state_dict(all);
    CHECK(fresh.steps() == 2);
    CHECK(fresh.state(0, 1)->buffers.at("v") == opt.state(0, 1)->buffers.at("v"));
    CHECK(fresh.state(0, 2) == nullptr);
  }
}
