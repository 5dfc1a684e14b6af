#include "zerograd/optim/lr_scheduler.hpp"

#include <cmath>

#include "optim_common.hpp"

namespace zg::optim {

namespace {
void require(bool ok, const std::string& what, double value) {
  if (!ok) throw ValueError(what + ", got " + detail::num(value));
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

}  // namespace zg::optim
