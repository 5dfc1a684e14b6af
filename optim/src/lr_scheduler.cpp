#include "zerograd/optim/lr_scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "optim_common.hpp"

namespace zg::optim {

namespace {
void require(bool ok, const std::string& what, double value) {
  if (!ok) throw ValueError(what + ", got " + zg::number_str(value));
}
}  // namespace

StepLR::StepLR(std::int64_t step_size, double gamma) : step_size_(step_size), gamma_(gamma) {
  require(step_size > 0, "StepLR: step_size must be > 0", double(step_size));
  require(gamma > 0 && std::isfinite(gamma), "StepLR: gamma must be > 0", gamma);
}

double StepLR::operator()(double base_lr, std::int64_t epoch) const {
  return base_lr * std::pow(gamma_, double(epoch / step_size_));  // base gamma^floor(epoch / step_size)
}

ExponentialLR::ExponentialLR(double gamma) : gamma_(gamma) {
  require(gamma > 0 && std::isfinite(gamma), "ExponentialLR: gamma must be > 0", gamma);
}

double ExponentialLR::operator()(double base_lr, std::int64_t epoch) const {
  return base_lr * std::pow(gamma_, double(epoch));  // base gamma^epoch
}

CosineAnnealingLR::CosineAnnealingLR(std::int64_t T_max, double eta_min) : T_max_(T_max), eta_min_(eta_min) {
  require(T_max > 0, "CosineAnnealingLR: T_max must be > 0", double(T_max));
  require(eta_min >= 0 && std::isfinite(eta_min), "CosineAnnealingLR: eta_min must be >= 0", eta_min);
}

double CosineAnnealingLR::operator()(double base_lr, std::int64_t epoch) const {
  const double pi = std::acos(-1.0);
  // eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2
  return eta_min_ + (base_lr - eta_min_) * (1 + std::cos(pi * double(epoch) / double(T_max_))) / 2;
}

LinearWarmup::LinearWarmup(std::int64_t warmup_steps, Schedule after)
    : warmup_steps_(warmup_steps), after_(std::move(after)) {
  require(warmup_steps > 0, "LinearWarmup: warmup_steps must be > 0", double(warmup_steps));
}

double LinearWarmup::operator()(double base_lr, std::int64_t epoch) const {
  if (epoch < warmup_steps_) return base_lr * double(epoch + 1) / double(warmup_steps_);  // base (e + 1) / W
  return after_ ? after_(base_lr, epoch - warmup_steps_) : base_lr;
}

MultiStepLR::MultiStepLR(std::vector<std::int64_t> milestones, double gamma)
    : milestones_(std::move(milestones)), gamma_(gamma) {
  for (auto m : milestones_) require(m >= 0, "MultiStepLR: milestones must be >= 0", double(m));
  require(gamma > 0 && std::isfinite(gamma), "MultiStepLR: gamma must be > 0", gamma);
  std::sort(milestones_.begin(), milestones_.end());
}

double MultiStepLR::operator()(double base_lr, std::int64_t epoch) const {
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  return base_lr * std::pow(gamma_, double(passed));  // base gamma^(milestones <= epoch)
}

LambdaLR::LambdaLR(std::function<double(std::int64_t)> lambda) : lambda_(std::move(lambda)) {
  if (!lambda_) throw ValueError("LambdaLR: the function is empty");
}

double LambdaLR::operator()(double base_lr, std::int64_t epoch) const { return base_lr * lambda_(epoch); }

OneCycleLR::OneCycleLR(double max_lr, std::int64_t total_steps, double pct_start, Anneal anneal, double div_factor,
                       double final_div_factor, bool three_phase)
    : max_lr_(max_lr), total_steps_(total_steps), pct_start_(pct_start), anneal_(anneal), div_factor_(div_factor),
      final_div_factor_(final_div_factor), three_phase_(three_phase) {
  require(max_lr >= 0 && std::isfinite(max_lr), "OneCycleLR: max_lr must be >= 0 (0: the initial lr)", max_lr);
  require(total_steps > 0, "OneCycleLR: total_steps must be > 0", double(total_steps));
  require(pct_start > 0 && pct_start < 1, "OneCycleLR: pct_start must be in (0, 1)", pct_start);
  require(div_factor > 0 && std::isfinite(div_factor), "OneCycleLR: div_factor must be > 0", div_factor);
  require(final_div_factor > 0 && std::isfinite(final_div_factor), "OneCycleLR: final_div_factor must be > 0",
          final_div_factor);
  // phases end at steps pct T - 1, (2 pct T - 2,) T - 1: each must be after the last
  const double T = double(total_steps), up = pct_start * T - 1, down = three_phase ? 2 * pct_start * T - 2 : up;
  require(up > 0 && (!three_phase || down > up) && T - 1 > down,
          "OneCycleLR: every phase needs at least one step; pct_start * total_steps is", pct_start * T);
}

double OneCycleLR::operator()(double base_lr, std::int64_t epoch) const {
  if (epoch >= total_steps_)
    throw ValueError("OneCycleLR: epoch " + std::to_string(epoch) + " is past the last step of total_steps " +
                     std::to_string(total_steps_));
  const double top = max_lr_ > 0 ? max_lr_ : base_lr;
  const double initial = top / div_factor_, lowest = initial / final_div_factor_;
  const double T = double(total_steps_), up = pct_start_ * T - 1;
  struct Phase { double end_step, from, to; };
  std::vector<Phase> phases = {{up, initial, top}, {T - 1, top, lowest}};
  if (three_phase_) phases = {{up, initial, top}, {2 * pct_start_ * T - 2, top, initial}, {T - 1, initial, lowest}};
  double start = 0;
  for (std::size_t i = 0; i < phases.size(); ++i) {
    const Phase& p = phases[i];
    if (double(epoch) <= p.end_step || i + 1 == phases.size()) {
      const double pct = (double(epoch) - start) / (p.end_step - start);
      if (anneal_ == Anneal::Linear) return p.from + (p.to - p.from) * pct;
      return p.to + (p.from - p.to) / 2 * (1 + std::cos(std::acos(-1.0) * pct));  // half a cosine from -> to
    }
    start = p.end_step;
  }
  return lowest;
}

LRScheduler::LRScheduler(Optimizer& optimizer, Schedule schedule)
    : optimizer_(optimizer), schedule_(std::move(schedule)) {
  if (!schedule_) throw ValueError("LRScheduler: the schedule is empty");
  for (std::size_t g = 0; g < optimizer_.num_groups(); ++g) base_lrs_.push_back(optimizer_.lr(g));
  apply();
}

void LRScheduler::apply() {
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) {
    const double lr = schedule_(base_lrs_[g], epoch_);
    detail::check_lr("LRScheduler (epoch " + std::to_string(epoch_) + ", group " + std::to_string(g) + ")", lr);
    optimizer_.set_lr(g, float(lr));
  }
}

void LRScheduler::step() {
  ++epoch_;
  apply();
}

NamedArrays LRScheduler::state_dict() const {
  NamedArrays out;
  out.emplace_back("scheduler.epoch", encode_count(epoch_));
  for (std::size_t g = 0; g < base_lrs_.size(); ++g)
    out.emplace_back("scheduler." + std::to_string(g) + ".base_lr", Tensor<float>(base_lrs_[g]));
  return out;
}

void LRScheduler::load_state_dict(const NamedArrays& arrays) {
  std::optional<std::int64_t> epoch;
  std::vector<std::optional<float>> base(base_lrs_.size());
  for (const auto& [key, a] : arrays) {
    if (key.rfind("scheduler.", 0) != 0) continue;
    const auto parts = detail::split(key.substr(10), '.');
    const auto g = parts.size() == 2 ? detail::parse_index(parts[0]) : std::nullopt;
    if (parts.size() == 1 && parts[0] == "epoch") {
      epoch = decode_count(a, key);
    } else if (g && *g < base.size() && parts[1] == "base_lr") {
      if (a.dimension() != 0)
        throw ShapeError("LRScheduler.load_state_dict: '" + key + "' has shape " + shape_str(a.shape()) +
                         ", expected ()");
      detail::check_lr("LRScheduler.load_state_dict: '" + key + "'", a());
      base[*g] = a();
    } else {
      throw ValueError("LRScheduler.load_state_dict: unknown key '" + key + "' (" + std::to_string(base.size()) +
                       " parameter groups)");
    }
  }
  if (!epoch) throw ValueError("LRScheduler.load_state_dict: missing key 'scheduler.epoch'");
  for (std::size_t g = 0; g < base.size(); ++g)
    if (!base[g])
      throw ValueError("LRScheduler.load_state_dict: missing key 'scheduler." + std::to_string(g) + ".base_lr'");
  const auto old_epoch = epoch_;
  const auto old_base = base_lrs_;
  epoch_ = *epoch;
  for (std::size_t g = 0; g < base.size(); ++g) base_lrs_[g] = *base[g];
  try {
    apply();
  } catch (...) {  // the schedule refused the restored epoch: keep the old state
    epoch_ = old_epoch;
    base_lrs_ = old_base;
    apply();
    throw;
  }
}

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, PlateauOptions options)
    : optimizer_(optimizer), o_(std::move(options)) {
  require(o_.factor > 0 && o_.factor < 1, "ReduceLROnPlateau: factor must be in (0, 1)", o_.factor);
  require(o_.patience >= 0, "ReduceLROnPlateau: patience must be >= 0", double(o_.patience));
  require(o_.cooldown >= 0, "ReduceLROnPlateau: cooldown must be >= 0", double(o_.cooldown));
  require(o_.threshold >= 0 && std::isfinite(o_.threshold), "ReduceLROnPlateau: threshold must be >= 0", o_.threshold);
  require(o_.eps >= 0, "ReduceLROnPlateau: eps must be >= 0", o_.eps);
  const std::size_t groups = optimizer_.num_groups();
  if (o_.min_lr.size() == 1) o_.min_lr.resize(groups, o_.min_lr[0]);
  if (o_.min_lr.size() != groups)
    throw ValueError("ReduceLROnPlateau: min_lr has " + std::to_string(o_.min_lr.size()) + " values for " +
                     std::to_string(groups) + " parameter groups");
  for (double m : o_.min_lr) detail::check_lr("ReduceLROnPlateau: min_lr", m);
  best_ = o_.mode == PlateauOptions::Mode::Min ? std::numeric_limits<float>::infinity()
                                               : -std::numeric_limits<float>::infinity();
}

bool ReduceLROnPlateau::improves(float metric) const {
  const double a = metric, best = best_, t = o_.threshold;
  const bool rel = o_.threshold_mode == PlateauOptions::ThresholdMode::Rel;
  if (o_.mode == PlateauOptions::Mode::Min) return rel ? a < best * (1 - t) : a < best - t;
  return rel ? a > best * (1 + t) : a > best + t;
}

void ReduceLROnPlateau::step(float metric) {
  if (std::isnan(metric)) throw ValueError("ReduceLROnPlateau.step: the metric is NaN (epoch " + std::to_string(epoch_ + 1) + ")");
  ++epoch_;
  if (improves(metric)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;
  }
  if (num_bad_epochs_ <= o_.patience) return;
  for (std::size_t g = 0; g < optimizer_.num_groups(); ++g) {
    const double old_lr = optimizer_.lr(g), new_lr = std::max(old_lr * o_.factor, o_.min_lr[g]);
    if (old_lr - new_lr > o_.eps) optimizer_.set_lr(g, float(new_lr));
  }
  cooldown_counter_ = o_.cooldown;
  num_bad_epochs_ = 0;
}

NamedArrays ReduceLROnPlateau::state_dict() const {
  return {{"scheduler.epoch", encode_count(epoch_)},
          {"scheduler.best", Tensor<float>(best_)},
          {"scheduler.num_bad_epochs", encode_count(num_bad_epochs_)},
          {"scheduler.cooldown_counter", encode_count(cooldown_counter_)}};
}

void ReduceLROnPlateau::load_state_dict(const NamedArrays& arrays) {
  std::optional<std::int64_t> epoch, bad, cooldown;
  std::optional<float> best;
  const std::string where = "ReduceLROnPlateau.load_state_dict: ";
  for (const auto& [key, a] : arrays) {
    if (key.rfind("scheduler.", 0) != 0) continue;
    if (key == "scheduler.epoch") {
      epoch = decode_count(a, key);
    } else if (key == "scheduler.num_bad_epochs") {
      bad = decode_count(a, key);
    } else if (key == "scheduler.cooldown_counter") {
      cooldown = decode_count(a, key);
    } else if (key == "scheduler.best") {
      if (a.dimension() != 0)
        throw ShapeError(where + "'" + key + "' has shape " + shape_str(a.shape()) + ", expected ()");
      if (std::isnan(a())) throw ValueError(where + "'" + key + "' is NaN");
      best = a();
    } else {
      throw ValueError(where + "unknown key '" + key + "'");
    }
  }
  for (const auto& [name, have] : {std::pair<const char*, bool>{"epoch", bool(epoch)}, {"best", bool(best)},
                                   {"num_bad_epochs", bool(bad)}, {"cooldown_counter", bool(cooldown)}})
    if (!have) throw ValueError(where + "missing key 'scheduler." + name + "'");
  epoch_ = *epoch;
  best_ = *best;
  num_bad_epochs_ = *bad;
  cooldown_counter_ = *cooldown;
}

}  // namespace zg::optim
