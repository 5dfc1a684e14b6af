// Module traversal (named_modules, apply) and the containers ModuleList and
// ModuleDict. Traversals use an explicit stack, as Module::walk does.
#include <algorithm>
#include <set>

#include "zerograd/nn/module.hpp"

namespace zg::nn {

template <class T>
std::vector<std::pair<std::string, BasicModule<T>*>> BasicModule<T>::named_modules() {
  std::vector<std::pair<std::string, BasicModule*>> out;
  std::set<const BasicModule*> seen;
  std::vector<std::pair<std::string, BasicModule*>> stack = {{"", this}};
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

template <class T>
BasicModule<T>& BasicModule<T>::apply(const std::function<void(BasicModule&)>& fn) {
  // Pre-order with children taken last-registered first, reversed, is the
  // post-order with children in registration order.
  std::vector<BasicModule*> order, stack = {this};
  while (!stack.empty()) {
    BasicModule* m = stack.back();
    stack.pop_back();
    order.push_back(m);
    for (const auto& [name, child] : m->children()) stack.push_back(child.get());
  }
  std::for_each(order.rbegin(), order.rend(), [&](BasicModule* m) { fn(*m); });
  return *this;
}

template <class T>
BasicModuleList<T>::BasicModuleList(std::initializer_list<Ptr> modules) {
  for (const auto& m : modules) push_back(m);
}

template <class T>
BasicModuleList<T>& BasicModuleList<T>::push_back(Ptr m) {
  modules_.push_back(this->register_module(std::to_string(modules_.size()), std::move(m)));
  return *this;
}

template <class T>
const typename BasicModuleList<T>::Ptr& BasicModuleList<T>::operator[](std::size_t i) const {
  if (i >= modules_.size())
    throw ValueError("ModuleList: index " + std::to_string(i) + " is out of range for " +
                     std::to_string(modules_.size()) + " modules");
  return modules_[i];
}

template <class T>
BasicVariable<T> BasicModuleList<T>::forward(const BasicVariable<T>&) {
  throw ValueError("ModuleList: has no forward; call its modules (" + std::to_string(modules_.size()) + " of them)");
}

template <class T>
BasicModuleDict<T>::BasicModuleDict(std::initializer_list<std::pair<std::string, Ptr>> modules) {
  for (const auto& [name, m] : modules) insert(name, m);
}

template <class T>
BasicModuleDict<T>& BasicModuleDict<T>::insert(const std::string& name, Ptr m) {
  if (name.empty() || name.find('.') != std::string::npos)
    throw ValueError("ModuleDict: name '" + name + "' must be non-empty and contain no '.'");
  if (contains(name)) throw ValueError("ModuleDict: name '" + name + "' is already taken");
  modules_.emplace_back(name, this->register_module(name, std::move(m)));
  return *this;
}

template <class T>
bool BasicModuleDict<T>::contains(const std::string& name) const {
  return std::any_of(modules_.begin(), modules_.end(), [&](const auto& kv) { return kv.first == name; });
}

template <class T>
const typename BasicModuleDict<T>::Ptr& BasicModuleDict<T>::operator[](const std::string& name) const {
  for (const auto& kv : modules_)
    if (kv.first == name) return kv.second;
  std::string keys;
  for (const auto& kv : modules_) keys += (keys.empty() ? "" : ", ") + kv.first;
  throw ValueError("ModuleDict: no module named '" + name + "' (has: " + (keys.empty() ? "none" : keys) + ")");
}

template <class T>
std::vector<std::string> BasicModuleDict<T>::keys() const {
  std::vector<std::string> out;
  for (const auto& kv : modules_) out.push_back(kv.first);
  return out;
}

template <class T>
BasicVariable<T> BasicModuleDict<T>::forward(const BasicVariable<T>&) {
  throw ValueError("ModuleDict: has no forward; look its modules up by name");
}

// Each child converts itself (Module::to), so a container's copy holds
// copies of its modules.
template <class T>
AnyModule BasicModuleList<T>::rebuild(Dtype dtype) const {
  auto convert = [this](auto list) -> AnyModule {
    using U = typename decltype(list)::element_type::scalar_type;
    for (const auto& m : modules_) list->push_back(m->template to<U>());
    return list;
  };
  if (dtype == Dtype::float64) return convert(std::make_shared<BasicModuleList<double>>());
  return convert(std::make_shared<BasicModuleList<float>>());
}

template <class T>
AnyModule BasicModuleDict<T>::rebuild(Dtype dtype) const {
  auto convert = [this](auto dict) -> AnyModule {
    using U = typename decltype(dict)::element_type::scalar_type;
    for (const auto& [name, m] : modules_) dict->insert(name, m->template to<U>());
    return dict;
  };
  if (dtype == Dtype::float64) return convert(std::make_shared<BasicModuleDict<double>>());
  return convert(std::make_shared<BasicModuleDict<float>>());
}

template std::vector<std::pair<std::string, BasicModule<float>*>> BasicModule<float>::named_modules();
template std::vector<std::pair<std::string, BasicModule<double>*>> BasicModule<double>::named_modules();
template BasicModule<float>& BasicModule<float>::apply(const std::function<void(BasicModule<float>&)>&);
template BasicModule<double>& BasicModule<double>::apply(const std::function<void(BasicModule<double>&)>&);
template class BasicModuleList<float>;
template class BasicModuleList<double>;
template class BasicModuleDict<float>;
template class BasicModuleDict<double>;

}  // namespace zg::nn
