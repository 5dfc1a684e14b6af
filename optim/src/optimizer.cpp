#include "zerograd/optim/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "optim_common.hpp"

namespace zg::optim {

bool is_weight(const Variable& p) {
  const std::string& n = p.name();
  const std::string last = n.substr(n.rfind('.') + 1);  // npos + 1 == 0: the whole name
  return last == "weight" || last == "W";
}

namespace {
constexpr std::int64_t kCountBase = std::int64_t(1) << 24;
}

Tensor<float> encode_count(std::int64_t n) {
  if (n < 0 || n >= kCountBase * kCountBase)
    throw ValueError("encode_count: count " + std::to_string(n) + " is outside [0, 2^48)");
  return Tensor<float>({float(n / kCountBase), float(n % kCountBase)});
}

std::int64_t decode_count(const Tensor<float>& a, const std::string& key) {
  if (zg::shape_of(a) != Shape{2})
    throw ShapeError("'" + key + "': a count has shape (2), got " + shape_str(a.shape()));
  const float hi = a(0), lo = a(1);
  const bool whole = hi >= 0 && lo >= 0 && hi < kCountBase && lo < kCountBase && hi == std::floor(hi) &&
                     lo == std::floor(lo);
  if (!whole)
    throw ValueError("'" + key + "': not a count [n / 2^24, n % 2^24]: [" + zg::number_str(hi) + ", " +
                     zg::number_str(lo) + "]");
  return std::int64_t(hi) * kCountBase + std::int64_t(lo);
}

Optimizer::Optimizer(std::string name, Params params, float lr) : name_(std::move(name)) {
  detail::check_lr(name_, lr);
  if (params.groups.empty()) throw ValueError(name_ + ": the parameter list is empty");
  std::set<const Node<float>*> seen;
  for (auto& pg : params.groups) {
    if (pg.params.empty())
      throw ValueError(name_ + ": parameter group " + std::to_string(groups_.size()) + " is empty");
    for (const auto& p : pg.params) {
      if (!p.defined()) throw ValueError(name_ + ": an empty Variable in the parameter list");
      if (!seen.insert(p.id()).second)
        throw ValueError(name_ + ": parameter '" + p.name() + "' appears twice in the parameter list");
    }
    if (pg.lr) detail::check_lr(name_, *pg.lr);
    if (pg.weight_decay) detail::check_decay(name_, *pg.weight_decay);
    const std::size_t n = pg.params.size();
    groups_.push_back({std::move(pg.params), pg.lr.value_or(lr), pg.weight_decay, pg.decay,
                       std::vector<bool>(n, false), std::vector<std::optional<ParamState>>(n)});
  }
}

void Optimizer::check_unit(const char* what, float value) const {
  if (!(value >= 0 && value < 1))
    throw ValueError(name_ + ": " + what + " must be in [0, 1), got " + zg::number_str(value));
}

void Optimizer::check_group(std::size_t group) const {
  if (group >= groups_.size())
    throw ValueError(name_ + ": no parameter group " + std::to_string(group) + " (there are " +
                     std::to_string(groups_.size()) + ")");
}

const std::vector<Variable>& Optimizer::params(std::size_t group) const {
  check_group(group);
  return groups_[group].params;
}

float Optimizer::lr(std::size_t group) const {
  check_group(group);
  return groups_[group].lr;
}

void Optimizer::set_lr(float lr) {
  detail::check_lr(name_, lr);
  for (auto& g : groups_) g.lr = lr;
}

void Optimizer::set_lr(std::size_t group, float lr) {
  check_group(group);
  detail::check_lr(name_, lr);
  groups_[group].lr = lr;
}

const ParamState* Optimizer::state(std::size_t group, std::size_t index) const {
  check_group(group);
  const auto& s = groups_[group].state.at(index);
  return s ? &*s : nullptr;
}

void Optimizer::set_weight_decay(float lambda) {
  detail::check_decay(name_, lambda);
  weight_decay_ = lambda;
}

float Optimizer::weight_decay(std::size_t group) const {
  check_group(group);
  return groups_[group].weight_decay.value_or(weight_decay_);
}

void Optimizer::set_decay_predicate(std::function<bool(const Variable&)> predicate) {
  if (!predicate) throw ValueError(name_ + ": the weight-decay predicate is empty");
  decay_predicate_ = std::move(predicate);
}

bool Optimizer::decays(std::size_t group, std::size_t index) const {
  check_group(group);
  const auto& g = groups_[group];
  return g.decay ? *g.decay : decay_predicate_(g.params.at(index));
}

void Optimizer::set_max_grad_norm(std::optional<float> max_norm) {
  if (max_norm && !(*max_norm > 0 && std::isfinite(*max_norm)))
    throw ValueError(name_ + ": gradient clipping needs max_norm > 0, got " + zg::number_str(*max_norm));
  max_grad_norm_ = max_norm;
}

std::pair<std::size_t, std::size_t> Optimizer::position(const Variable& p, const char* what) const {
  for (std::size_t g = 0; g < groups_.size(); ++g)
    for (std::size_t i = 0; i < groups_[g].params.size(); ++i)
      if (groups_[g].params[i].id() == p.id()) return {g, i};
  throw ValueError(name_ + ": " + what + ": '" + p.name() + "' is not a parameter of this optimizer");
}

void Optimizer::freeze(const Variable& p, bool frozen) {
  const auto [g, i] = position(p, "freeze");
  groups_[g].frozen[i] = frozen;
}

bool Optimizer::frozen(const Variable& p) const {
  const auto [g, i] = position(p, "frozen");
  return groups_[g].frozen[i];
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.cleargrad();
}

void Optimizer::step() {
  struct Item { std::size_t g, i; Variable grad; };
  std::vector<Item> items;  // what this step updates
  for (std::size_t g = 0; g < groups_.size(); ++g)
    for (std::size_t i = 0; i < groups_[g].params.size(); ++i) {
      const Variable& p = groups_[g].params[i];
      Variable grad = p.grad();
      if (groups_[g].frozen[i] || !grad.defined()) continue;
      if (grad.shape() != p.shape())
        throw ShapeError(name_ + ": the gradient of '" + p.name() + "' (group " + std::to_string(g) + ", index " +
                         std::to_string(i) + ") has shape " + shape_str(grad.shape()) + ", the parameter " +
                         shape_str(p.shape()));
      items.push_back({g, i, std::move(grad)});
    }

  float scale = 1;
  if (max_grad_norm_) {
    double sq = 0;  // norm = sqrt(sum of g^2 over all parameters)
    for (const auto& it : items)
      for (float x : it.grad.data()) sq += double(x) * x;
    const double norm = std::sqrt(sq);
    if (norm > *max_grad_norm_) scale = float(*max_grad_norm_ / (norm + 1e-6));
  }

  ++steps_;
  for (const auto& it : items) {
    Group& group = groups_[it.g];
    Tensor<float>& p = group.params[it.i].data();
    const float lambda = decays(it.g, it.i) ? weight_decay(it.g) : 0.f;
    const float l2 = decoupled_decay() ? 0.f : lambda;
    const Tensor<float>* g = &it.grad.data();
    Tensor<float> effective;
    if (scale != 1 || l2 != 0) {
      effective = Tensor<float>::from_shape(p.shape());
      float* e = effective.data();
      const float* gs = g->data();
      const float* w = p.data();
      for (std::size_t k = 0; k < p.size(); ++k) e[k] = scale * gs[k] + l2 * w[k];  // g + lambda W
      g = &effective;
    }
    auto& s = group.state[it.i];
    if (!s) {
      s.emplace();
      for (const auto& b : buffer_names()) s->buffers[b] = xt::zeros<float>(p.shape());
    }
    for (const auto& [b, buf] : s->buffers)
      if (buf.shape() != p.shape())
        throw ShapeError(name_ + ": parameter '" + group.params[it.i].name() + "' now has shape " +
                         shape_str(p.shape()) + ", its state '" + b + "' " + shape_str(buf.shape()));
    ++s->t;
    update(p, *g, *s, group.lr, decoupled_decay() ? lambda : 0.f);
  }
}

NamedArrays Optimizer::state_dict() const {
  NamedArrays out;
  out.emplace_back("optimizer.step", encode_count(steps_));
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "optimizer." + std::to_string(g) + ".";
    out.emplace_back(prefix + "lr", Tensor<float>(groups_[g].lr));
    for (std::size_t i = 0; i < groups_[g].state.size(); ++i) {
      const auto& s = groups_[g].state[i];
      if (!s) continue;
      const std::string key = prefix + std::to_string(i) + ".";
      out.emplace_back(key + "t", encode_count(s->t));
      for (const auto& [b, buf] : s->buffers) out.emplace_back(key + b, buf);
    }
  }
  return out;
}

void Optimizer::load_state_dict(const NamedArrays& arrays) {
  // Everything is read into copies first and committed only if all is valid.
  std::optional<std::int64_t> steps;
  std::vector<std::optional<float>> lrs(groups_.size());
  std::vector<std::vector<std::optional<ParamState>>> states;
  for (const auto& g : groups_) states.emplace_back(g.params.size());
  std::set<std::string> seen;
  const std::vector<std::string> names = buffer_names();
  const std::string where = name_ + ".load_state_dict: ";

  for (const auto& [key, a] : arrays) {
    if (key.rfind("optimizer.", 0) != 0) continue;
    if (!seen.insert(key).second) throw ValueError(where + "key '" + key + "' appears twice");
    const auto parts = detail::split(key.substr(10), '.');
    const auto g = parts.size() >= 2 ? detail::parse_index(parts[0]) : std::nullopt;
    const auto i = parts.size() == 3 ? detail::parse_index(parts[1]) : std::nullopt;
    if (parts.size() == 1 && parts[0] == "step") {
      steps = decode_count(a, key);
    } else if (parts.size() == 2 && g && *g < groups_.size() && parts[1] == "lr") {
      if (a.dimension() != 0)
        throw ShapeError(where + "'" + key + "' has shape " + shape_str(a.shape()) + ", expected ()");
      detail::check_lr(where + "'" + key + "'", a());
      lrs[*g] = a();
    } else if (g && i && *g < groups_.size() && *i < groups_[*g].params.size()) {
      auto& s = states[*g][*i];
      if (!s) {
        s.emplace();
        s->t = -1;  // not read yet
      }
      const Variable& p = groups_[*g].params[*i];
      if (parts[2] == "t") {
        s->t = decode_count(a, key);
      } else if (std::find(names.begin(), names.end(), parts[2]) != names.end()) {
        if (zg::shape_of(a) != p.shape())
          throw ShapeError(where + "'" + key + "' has shape " + shape_str(a.shape()) + ", parameter '" + p.name() +
                           "' has shape " + shape_str(p.shape()));
        s->buffers[parts[2]] = a;
      } else {
        throw ValueError(where + "unknown key '" + key + "' (" + name_ + " keeps " + detail::join(names) + ")");
      }
    } else {
      throw ValueError(where + "unknown key '" + key + "' (" + std::to_string(groups_.size()) +
                       " parameter groups)");
    }
  }

  if (!steps) throw ValueError(where + "missing key 'optimizer.step'");
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "optimizer." + std::to_string(g) + ".";
    if (!lrs[g]) throw ValueError(where + "missing key '" + prefix + "lr'");
    for (std::size_t i = 0; i < states[g].size(); ++i) {
      const auto& s = states[g][i];
      if (!s) continue;
      if (s->t < 0) throw ValueError(where + "missing key '" + prefix + std::to_string(i) + ".t'");
      for (const auto& b : names)
        if (!s->buffers.count(b))
          throw ValueError(where + "missing key '" + prefix + std::to_string(i) + "." + b + "'");
    }
  }

  steps_ = *steps;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].lr = *lrs[g];
    groups_[g].state = std::move(states[g]);
  }
}

}  // namespace zg::optim
