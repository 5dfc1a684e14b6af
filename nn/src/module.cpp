#include "zerograd/nn/module.hpp"

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>

namespace zg::nn {

namespace {
thread_local bool forced_eval = false;
}
EvalModeGuard::EvalModeGuard() : previous_(forced_eval) { forced_eval = true; }
EvalModeGuard::~EvalModeGuard() { forced_eval = previous_; }
bool eval_mode_forced() { return forced_eval; }

Variable Module::register_parameter(std::string name, Variable v) {
  v.set_name(name);
  v.requires_grad_();
  params_.emplace_back(std::move(name), v);
  return v;
}

Variable Module::register_buffer(std::string name, Variable v) {
  v.set_name(name);
  buffers_.emplace_back(std::move(name), v);
  return v;
}

void Module::add_child(std::string name, std::shared_ptr<Module> m) {
  if (!m) throw ValueError(type_name() + ": register_module('" + name + "') got a null module");
  m->train(training_);
  children_.emplace_back(std::move(name), std::move(m));
}

// Visits this module and every submodule, depth first, iteratively.
void Module::walk(const std::string& prefix,
                  const std::function<void(const std::string&, const Module&)>& fn) const {
  std::vector<std::pair<std::string, const Module*>> stack = {{prefix, this}};
  while (!stack.empty()) {
    auto [path, m] = stack.back();
    stack.pop_back();
    fn(path, *m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(path.empty() ? it->first : path + "." + it->first, it->second.get());
  }
}

NamedVariables Module::named_parameters() const {
  NamedVariables out;
  walk("", [&](const std::string& path, const Module& m) {
    for (const auto& [name, v] : m.params_) out.emplace_back(path.empty() ? name : path + "." + name, v);
  });
  return out;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> out;
  for (auto& [name, v] : named_parameters()) out.push_back(v);
  return out;
}

NamedVariables Module::named_buffers() const {
  NamedVariables out;
  walk("", [&](const std::string& path, const Module& m) {
    for (const auto& [name, v] : m.buffers_) out.emplace_back(path.empty() ? name : path + "." + name, v);
  });
  return out;
}

std::size_t Module::parameter_count() const {
  std::size_t n = 0;
  for (const auto& [name, v] : named_parameters()) n += v.size();
  return n;
}

void Module::zero_grad() {
  for (auto& v : parameters()) v.cleargrad();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

std::string Module::summary() const {
  std::ostringstream out;
  walk("", [&](const std::string& path, const Module& m) {
    const std::size_t depth = path.empty() ? 0 : std::count(path.begin(), path.end(), '.') + 1;
    out << std::string(2 * depth, ' ') << (path.empty() ? "" : path + ": ") << m.type_name();
    if (!m.extra_repr().empty()) out << "(" << m.extra_repr() << ")";
    out << "\n";
    for (const auto& [name, v] : m.params_)
      out << std::string(2 * depth + 2, ' ') << name << " " << shape_str(v.shape()) << " " << v.size() << "\n";
  });
  out << "parameters: " << parameter_count() << (training_ ? " (train mode)" : " (eval mode)") << "\n";
  return out.str();
}

NamedArrays Module::state() const {
  NamedArrays out;
  for (const auto& [name, v] : named_parameters()) out.emplace_back(name, v.data());
  for (const auto& [name, v] : named_buffers()) out.emplace_back(name, v.data());
  return out;
}

NamedArrays Module::load_state(const NamedArrays& arrays, bool strict) {
  NamedVariables targets = named_parameters();
  for (auto& b : named_buffers()) targets.push_back(b);
  std::map<std::string, const Tensor<float>*> given;
  std::vector<std::string> problems;
  for (const auto& [name, a] : arrays)
    if (!given.emplace(name, &a).second) problems.push_back("'" + name + "' appears twice");
  std::map<std::string, bool> used;
  for (const auto& [name, v] : targets) {
    auto it = given.find(name);
    if (it == given.end()) {
      problems.push_back("'" + name + "' is missing");
      continue;
    }
    used[name] = true;
    if (Shape(it->second->shape().begin(), it->second->shape().end()) != v.shape())
      problems.push_back("'" + name + "' has shape " + shape_str(it->second->shape()) + ", the module expects " +
                         shape_str(v.shape()));
  }
  NamedArrays rest;
  for (const auto& [name, a] : arrays) {
    if (used.count(name)) continue;
    if (strict) problems.push_back("'" + name + "' is not in the module");
    else rest.emplace_back(name, a);
  }
  if (!problems.empty()) {
    std::string msg = type_name() + "::load_state: nothing was loaded: ";
    for (std::size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    throw ValueError(msg);
  }
  for (auto& [name, v] : targets) v.data() = *given.at(name);
  return rest;
}

}  // namespace zg::nn
