#pragma once
/// @file
/// The base of every optimizer: parameter groups, per-parameter state and the
/// hooks that turn a gradient into the effective gradient an update uses.
//
// Note [optimizer state]: a parameter's state (its update count t and buffers
// such as "m" and "v") is created on its first update and keyed by position:
// (group index, index in the group). Positions, unlike node addresses, are the
// same in the next process, so state_dict() names them "optimizer.<g>.<i>.<buffer>".
//
// Note [Optimizer hooks]: step() never writes into a gradient array (other nodes may hold
// it). For each parameter it takes p.grad() and, in this order (PyTorch's:
// clip_grad_norm_ before step, decay inside step):
//   1. frozen parameters and parameters without a gradient are skipped;
//   2. clipping: norm = sqrt(sum of g^2 over every parameter kept in 1);
//      if norm > max_norm, every g is scaled by max_norm / (norm + 1e-6);
//   3. weight decay as in the book: g + lambda W, for parameters that decay
//      (AdamW instead decays the parameter itself, decoupled from g).
// The update then reads the result, a new array when 2 or 3 changed anything.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <zerograd/variable.hpp>

namespace zg::optim {

/// Named arrays, as a .npz checkpoint holds them.
using NamedArrays = std::vector<std::pair<std::string, Tensor<float>>>;

/// Parameters that share hyperparameters. Unset fields take the optimizer's.
struct ParamGroup {
  std::vector<Variable> params;  ///< the parameters, updated in place
  std::optional<float> lr = {};  ///< learning rate
  std::optional<float> weight_decay = {};  ///< lambda
  std::optional<bool> decay = {};          ///< true: decay all, false: none; unset: the predicate decides
};

/// What an optimizer is built from: one list of parameters, or groups.
struct Params {
  Params(std::vector<Variable> params) : groups{ParamGroup{std::move(params)}} {}  ///< one group
  Params(std::initializer_list<Variable> params) : Params(std::vector<Variable>(params)) {}  ///< one group, braced
  Params(std::vector<ParamGroup> groups) : groups(std::move(groups)) {}  ///< several groups
  Params(std::initializer_list<ParamGroup> groups) : groups(groups) {}  ///< several groups, braced
  std::vector<ParamGroup> groups;  ///< in order: group g is state_dict()'s "optimizer.<g>"
};

/// One parameter's state (see Note [optimizer state]).
struct ParamState {
  std::int64_t t = 0;                            ///< updates of this parameter, this one included
  std::map<std::string, Tensor<float>> buffers;  ///< shaped like the parameter, zero at first
};

/// The default decay predicate: the last dotted part of the name is "weight"
/// or "W" ("fc.weight" decays; "fc.bias", "bn.gamma", "bn.beta" do not).
bool is_weight(const Variable& p);

/// A step count as float32 [n / 2^24, n % 2^24]: exact up to 2^48 (a single
/// float32 holds integers exactly only up to 2^24).
Tensor<float> encode_count(std::int64_t n);
/// The count back; throws ShapeError / ValueError naming key if it is not one.
std::int64_t decode_count(const Tensor<float>& a, const std::string& key);

/// The base of every optimizer. step() turns each parameter's gradient into
/// the effective gradient (freezing, clipping, weight decay, in the order of
/// Note [Optimizer hooks]) and calls update() with it; a subclass states its
/// formula and implements update() and buffer_names().
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  const std::string& name() const { return name_; }  ///< "SGD", "Adam", ...

  /// One update of every parameter that has a gradient and is not frozen.
  void step();
  /// Clears the gradient of every parameter.
  void zero_grad();

  std::size_t num_groups() const { return groups_.size(); }  ///< parameter groups
  const std::vector<Variable>& params(std::size_t group = 0) const;  ///< a group's parameters
  float lr(std::size_t group = 0) const;  ///< a group's learning rate
  void set_lr(float lr);  ///< every group
  void set_lr(std::size_t group, float lr);  ///< one group
  std::int64_t steps() const { return steps_; }  ///< step() calls so far
  /// Null until the parameter's first update.
  const ParamState* state(std::size_t group, std::size_t index) const;

  // Hooks (see Note [Optimizer hooks]).
  /// The book's weight decay lambda, for groups without their own; 0 at first.
  void set_weight_decay(float lambda);
  float weight_decay(std::size_t group = 0) const;  ///< a group's lambda
  /// Which parameters decay, for groups that do not say (default: is_weight).
  void set_decay_predicate(std::function<bool(const Variable&)> predicate);
  bool decays(std::size_t group, std::size_t index) const;  ///< whether parameter index of group decays
  void set_max_grad_norm(std::optional<float> max_norm);  ///< nullopt: no clipping
  /// A frozen parameter is skipped by step(); ValueError if p is not a parameter here.
  void freeze(const Variable& p, bool frozen = true);
  bool frozen(const Variable& p) const;  ///< whether p is frozen

  /// "optimizer.step", "optimizer.<g>.lr" (0-d) and per parameter with state
  /// "optimizer.<g>.<i>.t" and "optimizer.<g>.<i>.<buffer>". Counts are encode_count()ed.
  NamedArrays state_dict() const;
  /// Restores what state_dict() gave, bit for bit. Keys not starting with
  /// "optimizer." are ignored (a checkpoint holds the model's arrays too). On any
  /// bad name, shape or value it throws ValueError / ShapeError naming the key and
  /// changes nothing.
  void load_state_dict(const NamedArrays& arrays);

 protected:
  Optimizer(std::string name, Params params, float lr);  ///< lr for groups without their own
  /// Names of the buffers a parameter's state holds.
  virtual std::vector<std::string> buffer_names() const = 0;
  /// Updates p in place from the effective gradient g. lambda is the decoupled
  /// weight decay (0 unless decoupled_decay() and the parameter decays).
  virtual void update(Tensor<float>& p, const Tensor<float>& g, ParamState& s, float lr, float lambda) = 0;
  /// true: weight decay goes to update() as lambda instead of into g.
  virtual bool decoupled_decay() const { return false; }
  /// Throws ValueError naming what unless 0 <= value < 1.
  void check_unit(const char* what, float value) const;

 private:
  struct Group {
    std::vector<Variable> params;
    float lr;
    std::optional<float> weight_decay;
    std::optional<bool> decay;
    std::vector<bool> frozen;
    std::vector<std::optional<ParamState>> state;
  };
  std::pair<std::size_t, std::size_t> position(const Variable& p, const char* what) const;
  void check_group(std::size_t group) const;

  std::string name_;
  std::vector<Group> groups_;
  float weight_decay_ = 0;
  std::function<bool(const Variable&)> decay_predicate_ = is_weight;
  std::optional<float> max_grad_norm_;
  std::int64_t steps_ = 0;
};

}  // namespace zg::optim
