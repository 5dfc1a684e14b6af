#pragma once
// Learning-rate schedules. A schedule is any function giving a group's lr at
// an epoch from the lr it started with; an LRScheduler applies one to every
// group of any optimizer:
//   LRScheduler sched(opt, LinearWarmup(5, CosineAnnealingLR(100)));
//   for (...) { ...; opt.step(); sched.step(); }
// "epoch" counts sched.step() calls: call it per epoch or per iteration.
// Each lr is computed from (initial lr, epoch) in closed form, so a restored
// scheduler gives the same lrs bit for bit.
#include <cstdint>
#include <functional>
#include <vector>

#include <zerograd/optim/optimizer.hpp>

namespace zg::optim {

using Schedule = std::function<double(double base_lr, std::int64_t epoch)>;

// lr = base gamma^floor(epoch / step_size)
class StepLR {
 public:
  StepLR(std::int64_t step_size, double gamma = 0.1);
  double operator()(double base_lr, std::int64_t epoch) const;

 private:
  std::int64_t step_size_;
  double gamma_;
};

// lr = base gamma^epoch
class ExponentialLR {
 public:
  explicit ExponentialLR(double gamma);
  double operator()(double base_lr, std::int64_t epoch) const;

 private:
  double gamma_;
};

// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2, PyTorch's
// closed form: after T_max epochs the cosine rises again.
class CosineAnnealingLR {
 public:
  explicit CosineAnnealingLR(std::int64_t T_max, double eta_min = 0);
  double operator()(double base_lr, std::int64_t epoch) const;

 private:
  std::int64_t T_max_;
  double eta_min_;
};

// lr = base (epoch + 1) / warmup_steps for the first warmup_steps epochs, then
// after(base, epoch - warmup_steps): the wrapped schedule starts at its epoch 0
// (no schedule: the constant base lr).
class LinearWarmup {
 public:
  explicit LinearWarmup(std::int64_t warmup_steps, Schedule after = {});
  double operator()(double base_lr, std::int64_t epoch) const;

 private:
  std::int64_t warmup_steps_;
  Schedule after_;
};

// Sets each group's lr to schedule(initial lr of the group, epoch). The
// optimizer must outlive the scheduler.
class LRScheduler {
 public:
  // Takes each group's current lr as its initial lr and applies epoch 0.
  LRScheduler(Optimizer& optimizer, Schedule schedule);
  void step();  // next epoch
  std::int64_t epoch() const { return epoch_; }
  float base_lr(std::size_t group = 0) const { return base_lrs_.at(group); }

  // "scheduler.epoch" (encode_count) and "scheduler.<g>.base_lr" (0-d).
  NamedArrays state_dict() const;
  // Restores them and applies the restored epoch; keys not starting with
  // "scheduler." are ignored. Throws ValueError / ShapeError naming the key and
  // changes nothing on a bad entry.
  void load_state_dict(const NamedArrays& arrays);

 private:
  void apply();
  Optimizer& optimizer_;
  Schedule schedule_;
  std::vector<float> base_lrs_;
  std::int64_t epoch_ = 0;
};

}  // namespace zg::optim
