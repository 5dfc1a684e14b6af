#pragma once
/// @file
/// Module: parameters, buffers and submodules registered by name.
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "zerograd/nn/npz.hpp"
#include "zerograd/variable.hpp"

namespace zg::nn {

/// Variables by name, in registration order: what named_parameters() returns.
template <class T> using BasicNamedVariables = std::vector<std::pair<std::string, BasicVariable<T>>>;
using NamedVariables = BasicNamedVariables<float>;  ///< the float form

template <class T> class BasicModule;
/// The element type a module computes in: float32 (training) or float64
/// (gradient checking, or users who want it).
enum class Dtype { float32, float64 };
/// The Dtype of T: Dtype::float64 for double, Dtype::float32 for float.
template <class T> constexpr Dtype dtype_of = std::is_same_v<T, double> ? Dtype::float64 : Dtype::float32;
/// A module of either dtype: what BasicModule::rebuild returns.
using AnyModule = std::variant<std::shared_ptr<BasicModule<float>>, std::shared_ptr<BasicModule<double>>>;

/// While alive, every Module in this thread behaves as in eval mode (Dropout
/// is the identity, BatchNorm uses running statistics), whatever its own
/// train()/eval() flag says; other threads are unaffected. Pair it with
/// NoGradGuard for inference next to a training thread.
class EvalModeGuard {
 public:
  EvalModeGuard();
  ~EvalModeGuard();
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  bool previous_;
};
/// Whether an EvalModeGuard is alive in this thread.
bool eval_mode_forced();

/// The base of every layer and model, for T = float (Module, what training
/// uses) or double (Module64). Parameters are Variables that optimizers
/// update in place; buffers (running statistics) are Variables without
/// gradients. Names are dotted paths: "fc1.weight", "bn.running_mean".
template <class T>
class BasicModule {
 public:
  using scalar_type = T;  ///< float or double
  virtual ~BasicModule() = default;
  BasicModule() = default;
  BasicModule(const BasicModule&) = delete;
  BasicModule& operator=(const BasicModule&) = delete;

  /// The module's computation; call it as module(x).
  virtual BasicVariable<T> forward(const BasicVariable<T>& x) = 0;
  BasicVariable<T> operator()(const BasicVariable<T>& x) { return forward(x); }  ///< forward(x)

  /// "Linear", "Sequential", ...; extra_repr() adds "in=784, out=50".
  virtual std::string type_name() const = 0;
  /// The configuration summary() and printing show; empty by default.
  virtual std::string extra_repr() const { return {}; }

  /// Every parameter of this module and its submodules by dotted name, in
  /// registration order, each once.
  BasicNamedVariables<T> named_parameters() const;
  std::vector<BasicVariable<T>> parameters() const;  ///< named_parameters()' Variables, what an optimizer takes
  BasicNamedVariables<T> named_buffers() const;  ///< buffers (running statistics) by dotted name, likewise
  /// Direct submodules by name, in registration order.
  std::vector<std::pair<std::string, std::shared_ptr<BasicModule>>> children() const { return children_; }
  std::size_t parameter_count() const;  ///< elements in all parameters
  /// This module (named "") and every submodule by dotted path, depth first
  /// in registration order; a module registered twice is listed once, under
  /// its first path (PyTorch's named_modules). Pointers into this tree.
  std::vector<std::pair<std::string, BasicModule*>> named_modules();
  /// fn on every submodule, children before their parent and in registration
  /// order, then on this module (PyTorch's apply): to re-initialise weights, say.
  BasicModule& apply(const std::function<void(BasicModule&)>& fn);

  void zero_grad();  ///< clears every parameter's .grad
  /// Train mode (the default) or eval mode, for this module and all below it.
  void train(bool on = true);
  void eval() { train(false); }  ///< train(false)
  /// The module's flag, unless an EvalModeGuard is alive in this thread.
  bool is_training() const { return training_ && !eval_mode_forced(); }

  /// A table of submodules, parameter shapes and counts.
  std::string summary() const;

  /// Parameters and buffers by dotted name as float32 arrays (what
  /// checkpoints hold).
  NamedArrays state() const;
  /// Replaces parameters and buffers from named arrays. Every name must be
  /// present with the right shape; nothing changes unless all are valid. The
  /// error lists every problem. Entries not belonging to the module are
  /// returned (e.g. an optimizer's state) unless strict, where they are errors.
  NamedArrays load_state(const NamedArrays& arrays, bool strict = false);

  /// A deep copy computing in U (PyTorch's .double() / .float(), except that
  /// the copy is a new module: this one is unchanged): the same submodules,
  /// parameter and buffer values (converted), and train/eval flags. It draws
  /// no random numbers. Built-in modules support it; a module of your own
  /// does when it overrides rebuild(). A module registered at two places
  /// (shared weights) is a ValueError: the copy would not share them.
  template <class U> std::shared_ptr<BasicModule<U>> to() const {
    return std::get<std::shared_ptr<BasicModule<U>>>(converted(dtype_of<U>));
  }
  /// Copies every parameter and buffer of other (same names and shapes,
  /// either dtype) into this module, converting; nothing changes unless all
  /// match, and the error lists every difference. With to() or without it:
  /// build MyNet<double> yourself and copy a trained MyNet<float> into it.
  template <class U> void copy_state_from(const BasicModule<U>& other);

  /// A new module of the same type and configuration in the given dtype,
  /// freshly initialised (to() then copies the values). Override it in a
  /// module of your own, usually as `return nn::rebuild<MyNet>(dtype, args...);`.
  /// The default throws ValueError naming the module.
  virtual AnyModule rebuild(Dtype dtype) const;

 protected:
  /// Registers v as a parameter under name (requires_grad is set) and returns
  /// it; a layer's constructor calls it for each weight.
  BasicVariable<T> register_parameter(std::string name, BasicVariable<T> v);
  /// A Variable saved and converted with the module but never trained.
  BasicVariable<T> register_buffer(std::string name, BasicVariable<T> v);
  template <class M>
  /// Registers m as a submodule under name, so that its parameters are this
  /// module's "name.*"; returns m.
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
    add_child(std::move(name), m);
    return m;
  }

 private:
  template <class> friend class BasicModule;
  AnyModule converted(Dtype dtype) const;
  void add_child(std::string name, std::shared_ptr<BasicModule> m);
  void walk(const std::string& prefix, const std::function<void(const std::string&, const BasicModule&)>& fn) const;
  BasicNamedVariables<T> params_;
  BasicNamedVariables<T> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<BasicModule>>> children_;
  bool training_ = true;
};
using Module = BasicModule<float>;  ///< the float module, what training uses
using Module64 = BasicModule<double>;  ///< the double module, for gradient checks

/// M<float> or M<double> built from args: the usual body of rebuild().
template <template <class> class M, class... Args>
AnyModule rebuild(Dtype dtype, const Args&... args) {
  if (dtype == Dtype::float64) return std::make_shared<M<double>>(args...);
  return std::make_shared<M<float>>(args...);
}

/// Holds modules in order, named "0", "1", ..., so that their parameters are
/// registered; it has no forward of its own (PyTorch's ModuleList).
template <class T>
class BasicModuleList : public BasicModule<T> {
 public:
  using Ptr = std::shared_ptr<BasicModule<T>>;  ///< a held module
  BasicModuleList() = default;
  BasicModuleList(std::initializer_list<Ptr> modules);  ///< the modules in order
  BasicModuleList& push_back(Ptr m);  ///< appends m, named by its position
  std::size_t size() const { return modules_.size(); }  ///< how many modules it holds
  /// Throws ValueError naming the index and the size when out of range.
  const Ptr& operator[](std::size_t i) const;
  auto begin() const { return modules_.begin(); }  ///< iterates over the held modules in order
  auto end() const { return modules_.end(); }  ///< the end of that iteration
  BasicVariable<T> forward(const BasicVariable<T>& x) override;  ///< throws: iterate instead
  std::string type_name() const override { return "ModuleList"; }
  AnyModule rebuild(Dtype dtype) const override;

 private:
  std::vector<Ptr> modules_;
};
using ModuleList = BasicModuleList<float>;  ///< the float ModuleList

/// Modules by name, in insertion order (PyTorch's ModuleDict). A name must be
/// a non-empty identifier without "."; inserting a name twice is an error
/// (PyTorch replaces the module).
template <class T>
class BasicModuleDict : public BasicModule<T> {
 public:
  using Ptr = std::shared_ptr<BasicModule<T>>;  ///< a held module
  BasicModuleDict() = default;
  BasicModuleDict(std::initializer_list<std::pair<std::string, Ptr>> modules);  ///< the modules, in this order
  /// Adds m under name; throws ValueError for a bad or repeated name.
  BasicModuleDict& insert(const std::string& name, Ptr m);
  bool contains(const std::string& name) const;  ///< whether a module is held under name
  /// Throws ValueError naming the key and the keys held when absent.
  const Ptr& operator[](const std::string& name) const;
  std::vector<std::string> keys() const;  ///< the names, in insertion order
  std::size_t size() const { return modules_.size(); }  ///< how many modules it holds
  BasicVariable<T> forward(const BasicVariable<T>& x) override;  ///< throws: look modules up instead
  std::string type_name() const override { return "ModuleDict"; }
  AnyModule rebuild(Dtype dtype) const override;

 private:
  std::vector<std::pair<std::string, Ptr>> modules_;
};
using ModuleDict = BasicModuleDict<float>;  ///< the float ModuleDict

}  // namespace zg::nn
