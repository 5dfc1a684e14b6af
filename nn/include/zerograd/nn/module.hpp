#pragma once
// Module: parameters, buffers and submodules registered by name.
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "zerograd/nn/npz.hpp"
#include "zerograd/variable.hpp"

namespace zg::nn {

using NamedVariables = std::vector<std::pair<std::string, Variable>>;

// While alive, every Module in this thread behaves as in eval mode (Dropout
// is the identity, BatchNorm uses running statistics), whatever its own
// train()/eval() flag says; other threads are unaffected. Pair it with
// NoGradGuard for inference next to a training thread.
class EvalModeGuard {
 public:
  EvalModeGuard();
  ~EvalModeGuard();
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  bool previous_;
};
bool eval_mode_forced();

// The base of every layer and model. Parameters are float Variables that
// optimizers update in place; buffers (running statistics) are Variables
// without gradients. Names are dotted paths: "fc1.weight", "bn.running_mean".
class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Variable forward(const Variable& x) = 0;
  Variable operator()(const Variable& x) { return forward(x); }

  // "Linear", "Sequential", ...; extra_repr() adds "in=784, out=50".
  virtual std::string type_name() const = 0;
  virtual std::string extra_repr() const { return {}; }

  NamedVariables named_parameters() const;
  std::vector<Variable> parameters() const;
  NamedVariables named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children() const { return children_; }
  std::size_t parameter_count() const;
  // This module (named "") and every submodule by dotted path, depth first
  // in registration order; a module registered twice is listed once, under
  // its first path (PyTorch's named_modules). Pointers into this tree.
  std::vector<std::pair<std::string, Module*>> named_modules();
  // fn on every submodule, children before their parent and in registration
  // order, then on this module (PyTorch's apply), e.g. to re-initialise weights.
  Module& apply(const std::function<void(Module&)>& fn);

  void zero_grad();
  // Train mode (the default) or eval mode, for this module and all below it.
  void train(bool on = true);
  void eval() { train(false); }
  // The module's flag, unless an EvalModeGuard is alive in this thread.
  bool is_training() const { return training_ && !eval_mode_forced(); }

  // A table of submodules, parameter shapes and counts.
  std::string summary() const;

  // Parameters and buffers by dotted name (what checkpoints hold).
  NamedArrays state() const;
  // Replaces parameters and buffers from named arrays. Every name must be
  // present with the right shape; nothing changes unless all are valid. The
  // error lists every problem. Entries not belonging to the module are
  // returned (e.g. an optimizer's state) unless strict, where they are errors.
  NamedArrays load_state(const NamedArrays& arrays, bool strict = false);

 protected:
  Variable register_parameter(std::string name, Variable v);
  Variable register_buffer(std::string name, Variable v);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
    add_child(std::move(name), m);
    return m;
  }

 private:
  void add_child(std::string name, std::shared_ptr<Module> m);
  void walk(const std::string& prefix, const std::function<void(const std::string&, const Module&)>& fn) const;
  NamedVariables params_;
  NamedVariables buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Holds modules in order, named "0", "1", ..., so that their parameters are
// registered; it has no forward of its own (PyTorch's ModuleList).
class ModuleList : public Module {
 public:
  ModuleList() = default;
  ModuleList(std::initializer_list<std::shared_ptr<Module>> modules);
  ModuleList& push_back(std::shared_ptr<Module> m);
  std::size_t size() const { return modules_.size(); }
  // Throws ValueError naming the index and the size when out of range.
  const std::shared_ptr<Module>& operator[](std::size_t i) const;
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }
  Variable forward(const Variable& x) override;  // throws: iterate instead
  std::string type_name() const override { return "ModuleList"; }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

// Modules by name, in insertion order (PyTorch's ModuleDict). A name must be
// a non-empty identifier without "."; inserting a name twice is an error
// (PyTorch replaces the module).
class ModuleDict : public Module {
 public:
  ModuleDict() = default;
  ModuleDict(std::initializer_list<std::pair<std::string, std::shared_ptr<Module>>> modules);
  ModuleDict& insert(const std::string& name, std::shared_ptr<Module> m);
  bool contains(const std::string& name) const;
  // Throws ValueError naming the key and the keys held when absent.
  const std::shared_ptr<Module>& operator[](const std::string& name) const;
  std::vector<std::string> keys() const;
  std::size_t size() const { return modules_.size(); }
  Variable forward(const Variable& x) override;  // throws: look modules up instead
  std::string type_name() const override { return "ModuleDict"; }

 private:
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> modules_;
};

}  // namespace zg::nn
