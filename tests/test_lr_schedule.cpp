// Learning-rate schedules against their closed forms, on any optimizer.
#include <cmath>

#include <zerograd/nn.hpp>
#include <zerograd/optim.hpp>

#include "golden/issue18_golden.hpp"
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

// MultiStepLR, LambdaLR, OneCycleLR and ReduceLROnPlateau against PyTorch's
// values (tests/golden/make_issue18_golden.py), and their checkpoints.

namespace {

// SGD(lr 0.1)'s lr at epochs 0, 1, ... equals PyTorch's (float lrs: 1e-6).
void check_schedule(const Schedule& schedule, const std::vector<double>& want) {
  SGD opt({weight()}, 0.1f);
  LRScheduler sched(opt, schedule);
  for (std::size_t e = 0; e < want.size(); ++e) {
    CAPTURE(e);
    CHECK(opt.lr() == doctest::Approx(want[e]).epsilon(1e-6));
    if (e + 1 < want.size()) sched.step();
  }
}

void check_plateau(const PlateauOptions& o, const std::vector<double>& metrics, const std::vector<double>& want) {
  SGD opt({weight()}, 0.1f);
  ReduceLROnPlateau sched(opt, o);
  REQUIRE(want.size() == metrics.size() + 1);
  CHECK(opt.lr() == doctest::Approx(want[0]));
  for (std::size_t e = 0; e < metrics.size(); ++e) {
    CAPTURE(e);
    sched.step(float(metrics[e]));
    CHECK(opt.lr() == doctest::Approx(want[e + 1]).epsilon(1e-6));
  }
}

}  // namespace

TEST_CASE("MultiStepLR and LambdaLR: PyTorch's lrs") {
  check_schedule(MultiStepLR({5, 2, 5}, 0.5), golden18::multistep);  // 5 twice: decays twice
  check_schedule(LambdaLR([](std::int64_t e) { return 1.0 / double(e + 1); }), {0.1, 0.05, 0.1 / 3, 0.025});
  CHECK(message_of<ValueError>([] { MultiStepLR({2, -1}); }) == "MultiStepLR: milestones must be >= 0, got -1");
  CHECK(message_of<ValueError>([] { MultiStepLR({2}, 0); }) == "MultiStepLR: gamma must be > 0, got 0");
  CHECK(message_of<ValueError>([] { LambdaLR({}); }) == "LambdaLR: the function is empty");
}

TEST_CASE("OneCycleLR: PyTorch's phases, cos and linear, two and three phases") {
  check_schedule(OneCycleLR(0.5, 10), golden18::onecycle_cos);
  check_schedule(OneCycleLR(0.5, 12, 0.25, OneCycleLR::Anneal::Linear, 10, 100, true),
                 golden18::onecycle_linear_three_phase);
  // max_lr 0: each group's own lr is its max_lr
  SGD opt({ParamGroup{{weight()}, 0.1f}, ParamGroup{{weight()}, 1.0f}});
  LRScheduler sched(opt, OneCycleLR(0, 10));
  sched.step();
  sched.step();
  CHECK(opt.lr(0) == doctest::Approx(0.1));
  CHECK(opt.lr(1) == doctest::Approx(1.0));
  for (int i = 0; i < 7; ++i) sched.step();
  CHECK(message_of<ValueError>([&] { sched.step(); }) ==
        "OneCycleLR: epoch 10 is past the last step of total_steps 10");
  CHECK(message_of<ValueError>([] { OneCycleLR(0.5, 10, 1.5); }) ==
        "OneCycleLR: pct_start must be in (0, 1), got 1.5");
  CHECK(message_of<ValueError>([] { OneCycleLR(0.5, 3, 0.3); }) ==
        "OneCycleLR: every phase needs at least one step; pct_start * total_steps is, got 0.9");
  CHECK(message_of<ValueError>([] { OneCycleLR(-1, 10); }).find("OneCycleLR: max_lr must be >= 0") == 0);
}

TEST_CASE("ReduceLROnPlateau: PyTorch's lrs for min/rel with cooldown and min_lr, and max/abs") {
  PlateauOptions a;
  a.patience = 1;
  a.factor = 0.5;
  a.threshold = 0.01;
  a.cooldown = 1;
  a.min_lr = {0.02};
  check_plateau(a, golden18::plateau_min_metrics, golden18::plateau_min_rel);
  PlateauOptions b;
  b.mode = PlateauOptions::Mode::Max;
  b.patience = 2;
  b.threshold = 0.5;
  b.threshold_mode = PlateauOptions::ThresholdMode::Abs;
  check_plateau(b, golden18::plateau_max_metrics, golden18::plateau_max_abs);
}

TEST_CASE("ReduceLROnPlateau: bad options and state") {
  SGD opt({weight()}, 0.1f);
  auto with = [](auto set) {
    PlateauOptions o;
    set(o);
    return o;
  };
  CHECK(message_of<ValueError>([&] { ReduceLROnPlateau(opt, with([](PlateauOptions& o) { o.factor = 1; })); }) ==
        "ReduceLROnPlateau: factor must be in (0, 1), got 1");
  CHECK(message_of<ValueError>([&] { ReduceLROnPlateau(opt, with([](PlateauOptions& o) { o.patience = -1; })); }) ==
        "ReduceLROnPlateau: patience must be >= 0, got -1");
  CHECK(message_of<ValueError>([&] { ReduceLROnPlateau(opt, with([](PlateauOptions& o) { o.min_lr = {0, 0}; })); }) ==
        "ReduceLROnPlateau: min_lr has 2 values for 1 parameter groups");
  ReduceLROnPlateau sched(opt);
  CHECK(message_of<ValueError>([&] { sched.step(std::nanf("")); }) ==
        "ReduceLROnPlateau.step: the metric is NaN (epoch 1)");
  sched.step(2.f);
  NamedArrays saved = sched.state_dict();
  REQUIRE(saved.size() == 4);
  NamedArrays missing(saved.begin(), saved.begin() + 3);
  CHECK(message_of<ValueError>([&] { sched.load_state_dict(missing); }) ==
        "ReduceLROnPlateau.load_state_dict: missing key 'scheduler.cooldown_counter'");
  NamedArrays bad = saved;
  bad[1].second = Tensor<float>({1.f, 2.f});
  CHECK(message_of<ShapeError>([&] { sched.load_state_dict(bad); }) ==
        "ReduceLROnPlateau.load_state_dict: 'scheduler.best' has shape (2), expected ()");
  bad = saved;
  bad.emplace_back("scheduler.0.base_lr", Tensor<float>(0.1f));
  CHECK(message_of<ValueError>([&] { sched.load_state_dict(bad); }) ==
        "ReduceLROnPlateau.load_state_dict: unknown key 'scheduler.0.base_lr'");
  CHECK(sched.epoch() == 1);
  CHECK(sched.best() == 2.f);
}

namespace {

// A tiny regression whose loss plateaus, so ReduceLROnPlateau acts.
struct Run {
  std::shared_ptr<nn::Linear> model;
  std::unique_ptr<Optimizer> opt;
  Run() {
    manual_seed(3);
    model = std::make_shared<nn::Linear>(3, 2);
    opt = std::make_unique<Adam>(model->parameters(), 0.05f);
  }
  float step() {
    Variable x(Tensor<float>({{1.f, 2.f, -1.f}, {0.5f, -0.3f, 0.8f}, {0.f, 1.f, 1.f}}));
    Variable t(Tensor<float>({{1.f, 0.f}, {0.f, 1.f}, {1.f, 1.f}}));
    opt->zero_grad();
    Variable loss = nn::functional::mse_loss((*model)(x), t);
    loss.backward();
    opt->step();
    return loss.item();
  }
};

// The same run, stopped after n of 2n steps into a checkpoint, resumed in new
// objects and continued, ends bit for bit where the uninterrupted run ends.
template <class Sched, class Make, class Step>
void check_resume(Make make, Step step, int n) {
  Run straight;
  Sched s0 = make(*straight.opt);
  for (int i = 0; i < 2 * n; ++i) step(s0, straight.step());

  Run first;
  Sched s1 = make(*first.opt);
  for (int i = 0; i < n; ++i) step(s1, first.step());
  const auto path = zg::testing::empty_dir("lr_schedule2") / "ckpt.npz";
  NamedArrays extra = first.opt->state_dict();
  for (auto& kv : s1.state_dict()) extra.push_back(kv);
  nn::save_checkpoint(path.string(), *first.model, extra);

  Run resumed;
  Sched s2 = make(*resumed.opt);
  nn::load_checkpoint(path.string(), *resumed.model, [&](const NamedArrays& a) {
    resumed.opt->load_state_dict(a);
    s2.load_state_dict(a);
  });
  CHECK(resumed.opt->lr() == first.opt->lr());
  for (int i = 0; i < n; ++i) step(s2, resumed.step());
  CHECK(resumed.model->weight.data() == straight.model->weight.data());
  CHECK(resumed.model->bias.data() == straight.model->bias.data());
  CHECK(resumed.opt->lr() == straight.opt->lr());
  CHECK(s2.epoch() == s0.epoch());
}

}  // namespace

TEST_CASE("the new schedulers resume from a checkpoint exactly") {
  auto plain = [](LRScheduler& s, float) { s.step(); };
  SUBCASE("OneCycleLR") {
    check_resume<LRScheduler>([](Optimizer& o) { return LRScheduler(o, OneCycleLR(0.1, 20)); }, plain, 8);
  }
  SUBCASE("MultiStepLR") {
    check_resume<LRScheduler>([](Optimizer& o) { return LRScheduler(o, MultiStepLR({3, 9, 12})); }, plain, 7);
  }
  SUBCASE("LambdaLR") {
    auto f = [](std::int64_t e) { return std::pow(0.9, double(e)); };
    check_resume<LRScheduler>([&](Optimizer& o) { return LRScheduler(o, LambdaLR(f)); }, plain, 6);
  }
  SUBCASE("ReduceLROnPlateau") {
    // the loss falls by about 10% a step; 30% is asked: the lr
    // halves at steps 3, 7, 11, 15, ...; the checkpoint after 12 steps holds a
    // cooldown still running
    PlateauOptions po;
    po.patience = 2;
    po.factor = 0.5;
    po.threshold = 0.3;
    po.cooldown = 1;
    auto make = [&](Optimizer& o) { return ReduceLROnPlateau(o, po); };
    check_resume<ReduceLROnPlateau>(make, [](ReduceLROnPlateau& s, float loss) { s.step(loss); }, 12);
    Run probe;
    ReduceLROnPlateau s(*probe.opt, po);
    std::vector<int> at;
    for (int i = 0; i < 24; ++i) {
      const float before = probe.opt->lr();
      s.step(probe.step());
      if (probe.opt->lr() < before) at.push_back(i);
      if (i == 11) CHECK(s.cooldown_counter() == 1);
    }
    std::string got;
    for (int i : at) got += std::to_string(i) + " ";
    CHECK(got == "3 7 11 15 19 23 ");
  }
}
