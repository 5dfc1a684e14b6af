// Module traversal (named_modules, apply) and the containers ModuleList and
// ModuleDict. Traversals use an explicit stack, as Module::walk does.
#include <algorithm>
#include <set>

#include "zerograd/nn/module.hpp"

namespace zg::nn {

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  std::set<const Module*> seen;
  std::vector<std::pair<std::string, Module*>> stack = {{"", this}};
  while (!stack.empty()) {
    auto [path, m] = stack.back();
    stack.pop_back();
    if (!seen.insert(m).second) continue;
    out.emplace_back(path, m);
    const auto kids = m->children();
    for (auto it = kids.rbegin(); it != kids.rend(); ++it)
      stack.emplace_back(path.empty() ? it->first : path + "." + it->first, it->second.get());
  }
  return out;
}

Module& Module::apply(const std::function<void(Module&)>& fn) {
  // Pre-order with children taken last-registered first, reversed, is the
  // post-order with children in registration order.
  std::vector<Module*> order, stack = {this};
  while (!stack.empty()) {
    Module* m = stack.back();
    stack.pop_back();
    order.push_back(m);
    for (const auto& [name, child] : m->children()) stack.push_back(child.get());
  }
  std::for_each(order.rbegin(), order.rend(), [&](Module* m) { fn(*m); });
  return *this;
}

ModuleList::ModuleList(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

ModuleList& ModuleList::push_back(std::shared_ptr<Module> m) {
  modules_.push_back(register_module(std::to_string(modules_.size()), std::move(m)));
  return *this;
}

const std::shared_ptr<Module>& ModuleList::operator[](std::size_t i) const {
  if (i >= modules_.size())
    throw ValueError("ModuleList: index " + std::to_string(i) + " is out of range for " +
                     std::to_string(modules_.size()) + " modules");
  return modules_[i];
}

Variable ModuleList::forward(const Variable&) {
  throw ValueError("ModuleList: has no forward; call its modules (" + std::to_string(modules_.size()) + " of them)");
}

ModuleDict::ModuleDict(std::initializer_list<std::pair<std::string, std::shared_ptr<Module>>> modules) {
  for (const auto& [name, m] : modules) insert(name, m);
}

ModuleDict& ModuleDict::insert(const std::string& name, std::shared_ptr<Module> m) {
  if (name.empty() || name.find('.') != std::string::npos)
    throw ValueError("ModuleDict: name '" + name + "' must be non-empty and contain no '.'");
  if (contains(name)) throw ValueError("ModuleDict: name '" + name + "' is already taken");
  modules_.emplace_back(name, register_module(name, std::move(m)));
  return *this;
}

bool ModuleDict::contains(const std::string& name) const {
  return std::any_of(modules_.begin(), modules_.end(), [&](const auto& kv) { return kv.first == name; });
}

const std::shared_ptr<Module>& ModuleDict::operator[](const std::string& name) const {
  for (const auto& kv : modules_)
    if (kv.first == name) return kv.second;
  std::string keys;
  for (const auto& kv : modules_) keys += (keys.empty() ? "" : ", ") + kv.first;
  throw ValueError("ModuleDict: no module named '" + name + "' (has: " + (keys.empty() ? "none" : keys) + ")");
}

std::vector<std::string> ModuleDict::keys() const {
  std::vector<std::string> out;
  for (const auto& kv : modules_) out.push_back(kv.first);
  return out;
}

Variable ModuleDict::forward(const Variable&) {
  throw ValueError("ModuleDict: has no forward; look its modules up by name");
}

}  // namespace zg::nn
