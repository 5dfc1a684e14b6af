// Learning-rate schedules against their closed forms, on any optimizer.
#include <cmath>

#include <zerograd/optim.hpp>

#include "testing.hpp"

using namespace zg;
using namespace zg::optim;
using zg::testing::message_of;

namespace {

Variable weight() {
  Variable p(Tensor<float>({1.f, -2.f}), "fc.weight");
  p.requires_grad_();
  return p;
}

// The lr after each of epochs 0 .. expected.size() - 1.
void check_lrs(Optimizer& opt, const Schedule& schedule, const std::vector<double>& expected, std::size_t group = 0) {
  LRScheduler sched(opt, schedule);
  for (std::size_t e = 0; e < expected.size(); ++e) {
    CAPTURE(e);
    CHECK(sched.epoch() == std::int64_t(e));
    CHECK(opt.lr(group) == doctest::Approx(expected[e]).epsilon(1e-6));
    sched.step();
  }
}

}  // namespace

TEST_CASE("StepLR: lr = base gamma^floor(epoch / step_size)") {
  SGD opt({weight()}, 0.1f);
  check_lrs(opt, StepLR(3, 0.5), {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025});
}

TEST_CASE("ExponentialLR: lr = base gamma^epoch") {
  Momentum opt({weight()}, 0.2f);
  check_lrs(opt, ExponentialLR(0.9), {0.2, 0.18, 0.162, 0.1458, 0.13122});
}

TEST_CASE("CosineAnnealingLR: eta_min + (base - eta_min)(1 + cos(pi epoch / T_max)) / 2") {
  Adam opt({weight()}, 0.1f);
  std::vector<double> expected;
  for (int e = 0; e <= 20; ++e) expected.push_back(0.001 + 0.099 * (1 + std::cos(M_PI * e / 10)) / 2);
  CHECK(expected[5] == doctest::Approx(0.0505));
  CHECK(expected[10] == doctest::Approx(0.001));
  check_lrs(opt, CosineAnnealingLR(10, 0.001), expected);  // PyTorch's closed form rises after T_max
}

TEST_CASE("LinearWarmup: base (epoch + 1) / W, then the wrapped schedule from its epoch 0") {
  SUBCASE("to a constant lr") {
    RMSprop opt({weight()}, 0.1f);
    check_lrs(opt, LinearWarmup(4), {0.025, 0.05, 0.075, 0.1, 0.1, 0.1});
  }
  SUBCASE("into exponential decay") {
    SGD opt({weight()}, 0.1f);
    check_lrs(opt, LinearWarmup(2, ExponentialLR(0.5)), {0.05, 0.1, 0.1, 0.05, 0.025});
  }
  SUBCASE("into cosine annealing") {
    SGD opt({weight()}, 0.1f);
    check_lrs(opt, LinearWarmup(1, CosineAnnealingLR(2)), {0.1, 0.1, 0.05, 0.0});
  }
}

TEST_CASE("a schedule sets every group from its own initial lr") {
  auto a = weight(), b = weight();
  AdaGrad opt({ParamGroup{{a}, 0.1f}, ParamGroup{{b}, 0.02f}});
  LRScheduler sched(opt, StepLR(1, 0.5));
  sched.step();
  sched.step();
  CHECK(opt.lr(0) == doctest::Approx(0.025));
  CHECK(opt.lr(1) == doctest::Approx(0.005));
  CHECK(sched.base_lr(1) == 0.02f);
}

TEST_CASE("the optimizer updates with the scheduled lr, any callable is a schedule") {
  auto p = weight();
  p.set_grad(Variable(Tensor<float>({1.f, -1.f})));
  Adam opt({p}, 0.01f);
  LRScheduler sched(opt, [](double base, std::int64_t epoch) { return base / double(epoch + 1); });
  sched.step();  // lr 0.005: Adam's first step moves each element by lr
  opt.step();
  CHECK(p.data()(0) == doctest::Approx(1 - 0.005).epsilon(1e-6));
  CHECK(p.data()(1) == doctest::Approx(-2 + 0.005).epsilon(1e-6));
}

TEST_CASE("scheduler state round trip and errors") {
  SGD opt({weight()}, 0.1f);
  LRScheduler sched(opt, CosineAnnealingLR(7, 0.01));
  for (int i = 0; i < 4; ++i) sched.step();
  const NamedArrays saved = sched.state_dict();
  REQUIRE(saved.size() == 2);
  CHECK(saved[0].first == "scheduler.epoch");
  CHECK(saved[1].first == "scheduler.0.base_lr");

  SGD opt2({weight()}, 0.1f);
  LRScheduler sched2(opt2, CosineAnnealingLR(7, 0.01));
  sched2.load_state_dict(saved);
  CHECK(sched2.epoch() == 4);
  CHECK(opt2.lr() == opt.lr());
  sched.step();
  sched2.step();
  CHECK(opt2.lr() == opt.lr());

  NamedArrays bad = saved;
  bad[1].second = Tensor<float>({0.1f, 0.2f});
  CHECK(message_of<ShapeError>([&] { sched2.load_state_dict(bad); })
            .find("'scheduler.0.base_lr' has shape (2), expected ()") != std::string::npos);
  bad = saved;
  bad.emplace_back("scheduler.1.base_lr", Tensor<float>(0.1f));
  CHECK(message_of<ValueError>([&] { sched2.load_state_dict(bad); }).find("unknown key 'scheduler.1.base_lr'") !=
        std::string::npos);
  CHECK(sched2.epoch() == 5);
}

TEST_CASE("bad schedule arguments name the schedule and the value") {
  auto has = [](const std::string& msg, const std::string& part) {
    INFO(msg);
    CHECK(msg.find(part) != std::string::npos);
  };
  has(message_of<ValueError>([] { StepLR(0); }), "StepLR: step_size must be > 0, got 0");
  has(message_of<ValueError>([] { StepLR(2, -0.5); }), "StepLR: gamma must be > 0, got -0.5");
  has(message_of<ValueError>([] { ExponentialLR(0); }), "ExponentialLR: gamma must be > 0, got 0");
  has(message_of<ValueError>([] { CosineAnnealingLR(0); }), "CosineAnnealingLR: T_max must be > 0, got 0");
  has(message_of<ValueError>([] { CosineAnnealingLR(5, -1); }), "eta_min must be >= 0, got -1");
  has(message_of<ValueError>([] { LinearWarmup(-3); }), "LinearWarmup: warmup_steps must be > 0, got -3");
  SGD opt({weight()});
  has(message_of<ValueError>([&] { LRScheduler(opt, [](double, std::int64_t) { return -1.0; }); }),
      "LRScheduler (epoch 0, group 0): lr must be a finite number >= 0, got -1");
}
