#pragma once
/// @file
/// Learning-rate schedules. A schedule is any function giving a group's lr at
/// an epoch from the lr it started with; an LRScheduler applies one to every
/// group of any optimizer:
/// @code
///   LRScheduler sched(opt, LinearWarmup(5, CosineAnnealingLR(100)));
///   for (...) { ...; opt.step(); sched.step(); }
/// @endcode
/// "epoch" counts sched.step() calls: call it per epoch or per iteration.
/// Each lr is computed from (initial lr, epoch) in closed form, so a restored
/// scheduler gives the same lrs bit for bit.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <zerograd/optim/optimizer.hpp>

namespace zg::optim {

/// A group's lr at an epoch from its initial lr: the classes below, or any function.
using Schedule = std::function<double(double base_lr, std::int64_t epoch)>;

/// lr = base gamma^floor(epoch / step_size)
class StepLR {
 public:
  StepLR(std::int64_t step_size, double gamma = 0.1);  ///< decays by gamma every step_size epochs
  double operator()(double base_lr, std::int64_t epoch) const;  ///< the lr at epoch, from base_lr

 private:
  std::int64_t step_size_;
  double gamma_;
};

/// lr = base gamma^epoch
class ExponentialLR {
 public:
  explicit ExponentialLR(double gamma);  ///< decays by gamma every epoch
  double operator()(double base_lr, std::int64_t epoch) const;  ///< the lr at epoch, from base_lr

 private:
  double gamma_;
};

/// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2, PyTorch's
/// closed form: after T_max epochs the cosine rises again.
class CosineAnnealingLR {
 public:
  explicit CosineAnnealingLR(std::int64_t T_max, double eta_min = 0);  ///< from base down to eta_min over T_max epochs
  double operator()(double base_lr, std::int64_t epoch) const;  ///< the lr at epoch, from base_lr

 private:
  std::int64_t T_max_;
  double eta_min_;
};

/// lr = base (epoch + 1) / warmup_steps for the first warmup_steps epochs, then
/// after(base, epoch - warmup_steps): the wrapped schedule starts at its epoch 0
/// (no schedule: the constant base lr).
class LinearWarmup {
 public:
  explicit LinearWarmup(std::int64_t warmup_steps, Schedule after = {});  ///< warmup_steps epochs, then after
  double operator()(double base_lr, std::int64_t epoch) const;  ///< the lr at epoch, from base_lr

 private:
  std::int64_t warmup_steps_;
  Schedule after_;
};

/// lr = base gamma^(number of milestones <= epoch); a milestone given twice
/// decays twice (PyTorch's MultiStepLR).
class MultiStepLR {
 public:
  MultiStepLR(std::vector<std::int64_t> milestones, double gamma = 0.1);  ///< decays by gamma at each milestone
  double operator()(double base_lr, std::int64_t epoch) const;  ///< the lr at epoch, from base_lr

 private:
  std::vector<std::int64_t> milestones_;  // sorted
  double gamma_;
};

/// lr = base lambda(epoch) (PyTorch's LambdaLR). As in PyTorch, a checkpoint
/// holds the epoch, not the function: give the same function when resuming.
class LambdaLR {
 public:
  explicit LambdaLR(std::function<double(std::int64_t epoch)> lambda);  ///< lambda(epoch): the factor on base
  double operator()(double base_lr, std::int64_t epoch) const;  ///< the lr at epoch, from base_lr

 private:
  std::function<double(std::int64_t)> lambda_;
};

/// PyTorch's OneCycleLR (without its momentum cycling): from max_lr /
/// div_factor up to max_lr over the first pct_start * total_steps - 1 steps,
/// then down to max_lr / (div_factor * final_div_factor) at step
/// total_steps - 1; three_phase goes back down to the initial lr first (at
/// 2 pct_start total_steps - 2) and only then to the minimum. Each phase
/// anneals by half a cosine or linearly. max_lr 0 takes each group's initial
/// lr as its max_lr. Epochs past total_steps - 1 are an error, as in PyTorch.
class OneCycleLR {
 public:
  /// Half a cosine or a straight line in each phase.
  enum class Anneal { Cos, Linear };
  /// PyTorch's parameters and defaults, as described above.
  OneCycleLR(double max_lr, std::int64_t total_steps, double pct_start = 0.3, Anneal anneal = Anneal::Cos,
             double div_factor = 25, double final_div_factor = 1e4, bool three_phase = false);
  double operator()(double base_lr, std::int64_t epoch) const;  ///< the lr at epoch, from base_lr

 private:
  double max_lr_;
  std::int64_t total_steps_;
  double pct_start_;
  Anneal anneal_;
  double div_factor_, final_div_factor_;
  bool three_phase_;
};

/// Sets each group's lr to schedule(initial lr of the group, epoch). The
/// optimizer must outlive the scheduler.
class LRScheduler {
 public:
  /// Takes each group's current lr as its initial lr and applies epoch 0.
  LRScheduler(Optimizer& optimizer, Schedule schedule);
  void step();  ///< next epoch
  std::int64_t epoch() const { return epoch_; }  ///< step() calls so far
  float base_lr(std::size_t group = 0) const { return base_lrs_.at(group); }  ///< a group's initial lr

  /// "scheduler.epoch" (encode_count) and "scheduler.<g>.base_lr" (0-d).
  NamedArrays state_dict() const;
  /// Restores them and applies the restored epoch; keys not starting with
  /// "scheduler." are ignored. Throws ValueError / ShapeError naming the key and
  /// changes nothing on a bad entry.
  void load_state_dict(const NamedArrays& arrays);

 private:
  void apply();
  Optimizer& optimizer_;
  Schedule schedule_;
  std::vector<float> base_lrs_;
  std::int64_t epoch_ = 0;
};

/// What ReduceLROnPlateau watches for and how it lowers the lr; PyTorch's
/// parameters and defaults.
struct PlateauOptions {
  /// Min: a lower metric improves (a loss); Max: a higher one (an accuracy).
  enum class Mode { Min, Max } mode = Mode::Min;  ///< Min by default
  /// Rel: improving needs a relative margin threshold; Abs: an absolute one.
  enum class ThresholdMode { Rel, Abs } threshold_mode = ThresholdMode::Rel;  ///< Rel by default
  double factor = 0.1;  ///< in (0, 1)
  std::int64_t patience = 10;  ///< bad epochs tolerated before the lr drops
  double threshold = 1e-4;  ///< the margin an improvement needs
  std::int64_t cooldown = 0;  ///< epochs after a drop in which bad epochs are not counted
  std::vector<double> min_lr = {0};  ///< one for every group, or one per group
  double eps = 1e-8;  ///< a drop smaller than this is skipped
};

/// PyTorch's ReduceLROnPlateau: step(metric) once per epoch; after more than
/// `patience` epochs without improving on the best metric, every group's lr
/// becomes max(lr factor, min_lr) (unless that changes it by eps or less),
/// followed by `cooldown` epochs in which bad epochs are not counted.
/// "Improving" in mode Min with threshold mode Rel is metric < best (1 - threshold),
/// Abs: metric < best - threshold; mode Max mirrors both. Metrics are kept as
/// float32 (as losses are), so a checkpoint restores `best` exactly.
class ReduceLROnPlateau {
 public:
  /// The optimizer must outlive the scheduler.
  explicit ReduceLROnPlateau(Optimizer& optimizer, PlateauOptions options = {});
  void step(float metric);  ///< the end of an epoch with this metric
  std::int64_t epoch() const { return epoch_; }  ///< step() calls so far
  float best() const { return best_; }  ///< the best metric so far
  std::int64_t num_bad_epochs() const { return num_bad_epochs_; }  ///< epochs since the best, outside cooldowns
  std::int64_t cooldown_counter() const { return cooldown_counter_; }  ///< cooldown epochs left

  /// "scheduler.epoch", "scheduler.num_bad_epochs", "scheduler.cooldown_counter"
  /// (encode_count) and "scheduler.best" (0-d). The lrs themselves are the
  /// optimizer's state. load_state_dict ignores keys not starting with
  /// "scheduler." and changes nothing on a bad or missing entry.
  NamedArrays state_dict() const;
  void load_state_dict(const NamedArrays& arrays);  ///< restores state_dict()'s arrays

 private:
  bool improves(float metric) const;
  Optimizer& optimizer_;
  PlateauOptions o_;
  float best_;
  std::int64_t epoch_ = 0, num_bad_epochs_ = 0, cooldown_counter_ = 0;
};

}  // namespace zg::optim
