#include "zerograd/nn/module.hpp"

#include <algorithm>
#include <iomanip>
#include <map>
#include <type_traits>
#include <sstream>

#include "zerograd/random.hpp"

namespace zg::nn {

namespace {
thread_local bool forced_eval = false;

template <class To, class From> Tensor<To> as(const Tensor<From>& a) { return xt::cast<To>(a); }

template <class T> std::string dtype_name() { return std::is_same_v<T, double> ? "float64" : "float32"; }
}  // namespace
EvalModeGuard::EvalModeGuard() : previous_(forced_eval) { forced_eval = true; }
EvalModeGuard::~EvalModeGuard() { forced_eval = previous_; }
bool eval_mode_forced() { return forced_eval; }

template <class T>
BasicVariable<T> BasicModule<T>::register_parameter(std::string name, BasicVariable<T> v) {
  v.set_name(name);
  v.requires_grad_();
  params_.emplace_back(std::move(name), v);
  return v;
}

template <class T>
BasicVariable<T> BasicModule<T>::register_buffer(std::string name, BasicVariable<T> v) {
  v.set_name(name);
  buffers_.emplace_back(std::move(name), v);
  return v;
}

template <class T>
void BasicModule<T>::add_child(std::string name, std::shared_ptr<BasicModule> m) {
  if (!m) throw ValueError(type_name() + ": register_module('" + name + "') got a null module");
  m->train(training_);
  children_.emplace_back(std::move(name), std::move(m));
}

// Visits this module and every submodule, depth first, iteratively.
template <class T>
void BasicModule<T>::walk(const std::string& prefix,
                          const std::function<void(const std::string&, const BasicModule&)>& fn) const {
  std::vector<std::pair<std::string, const BasicModule*>> stack = {{prefix, this}};
  while (!stack.empty()) {
    auto [path, m] = stack.back();
    stack.pop_back();
    fn(path, *m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(path.empty() ? it->first : path + "." + it->first, it->second.get());
  }
}

template <class T>
BasicNamedVariables<T> BasicModule<T>::named_parameters() const {
  BasicNamedVariables<T> out;
  walk("", [&](const std::string& path, const BasicModule& m) {
    for (const auto& [name, v] : m.params_) out.emplace_back(path.empty() ? name : path + "." + name, v);
  });
  return out;
}

template <class T>
std::vector<BasicVariable<T>> BasicModule<T>::parameters() const {
  std::vector<BasicVariable<T>> out;
  for (auto& [name, v] : named_parameters()) out.push_back(v);
  return out;
}

template <class T>
BasicNamedVariables<T> BasicModule<T>::named_buffers() const {
  BasicNamedVariables<T> out;
  walk("", [&](const std::string& path, const BasicModule& m) {
    for (const auto& [name, v] : m.buffers_) out.emplace_back(path.empty() ? name : path + "." + name, v);
  });
  return out;
}

template <class T>
std::size_t BasicModule<T>::parameter_count() const {
  std::size_t n = 0;
  for (const auto& [name, v] : named_parameters()) n += v.size();
  return n;
}

template <class T>
void BasicModule<T>::zero_grad() {
  for (auto& v : parameters()) v.cleargrad();
}

template <class T>
void BasicModule<T>::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

template <class T>
std::string BasicModule<T>::summary() const {
  std::ostringstream out;
  walk("", [&](const std::string& path, const BasicModule& m) {
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

template <class T>
NamedArrays BasicModule<T>::state() const {
  NamedArrays out;
  for (const auto& [name, v] : named_parameters()) out.emplace_back(name, as<float>(v.data()));
  for (const auto& [name, v] : named_buffers()) out.emplace_back(name, as<float>(v.data()));
  return out;
}

template <class T>
NamedArrays BasicModule<T>::load_state(const NamedArrays& arrays, bool strict) {
  BasicNamedVariables<T> targets = named_parameters();
  for (auto& b : named_buffers()) targets.push_back(b);
  std::map<std::string, const Tensor<float>*> given;
  std::vector<std::string> problems;
  for (const auto& [name, a] : arrays)
    if (!given.emplace(name, &a).second) problems.push_back(quoted(name) + " appears twice");
  std::map<std::string, bool> used;
  for (const auto& [name, v] : targets) {
    auto it = given.find(name);
    if (it == given.end()) {
      problems.push_back(quoted(name) + " is missing");
      continue;
    }
    used[name] = true;
    if (Shape(it->second->shape().begin(), it->second->shape().end()) != v.shape())
      problems.push_back(quoted(name) + " has shape " + shape_str(it->second->shape()) + ", the module expects " +
                         shape_str(v.shape()));
  }
  NamedArrays rest;
  for (const auto& [name, a] : arrays) {
    if (used.count(name)) continue;
    if (strict) problems.push_back(quoted(name) + " is not in the module");
    else rest.emplace_back(name, a);
  }
  if (!problems.empty()) {
    std::string msg = type_name() + "::load_state: nothing was loaded: ";
    msg += listed(problems, "; ");
    throw ValueError(msg);
  }
  for (auto& [name, v] : targets) v.data() = as<T>(*given.at(name));
  return rest;
}

template <class T>
template <class U>
void BasicModule<T>::copy_state_from(const BasicModule<U>& other) {
  std::vector<std::string> problems;
  std::vector<std::pair<BasicVariable<T>, BasicVariable<U>>> copies;  // to, from
  // Parameters from parameters, buffers from buffers, matched by name.
  auto match = [&](const BasicNamedVariables<T>& mine, const BasicNamedVariables<U>& theirs, const char* kind) {
    std::map<std::string, BasicVariable<U>> given(theirs.begin(), theirs.end());
    for (const auto& [name, v] : mine) {
      auto it = given.find(name);
      if (it == given.end()) {
        problems.push_back(std::string(kind) + " " + quoted(name) + " is missing from " + other.type_name());
        continue;
      }
      if (it->second.shape() != v.shape())
        problems.push_back(std::string(kind) + " " + quoted(name) + " has shape " + shape_str(it->second.shape()) +
                           " there and " + shape_str(v.shape()) + " here");
      copies.emplace_back(v, it->second);
      given.erase(it);
    }
    for (const auto& [name, v] : given) problems.push_back(std::string(kind) + " " + quoted(name) + " is not in " + type_name());
  };
  match(named_parameters(), other.named_parameters(), "parameter");
  match(named_buffers(), other.named_buffers(), "buffer");
  if (!problems.empty()) {
    std::string msg = type_name() + "<" + dtype_name<T>() + ">::copy_state_from(" + other.type_name() + "<" +
                      dtype_name<U>() + ">): nothing was copied: ";
    msg += listed(problems, "; ");
    throw ValueError(msg);
  }
  for (auto& [to, from] : copies) to.data() = as<T>(from.data());
}

template <class T>
AnyModule BasicModule<T>::rebuild(Dtype dtype) const {
  throw ValueError(type_name() + ": to<" + (dtype == Dtype::float64 ? "double" : "float") +
                   ">() needs " + type_name() + " to override rebuild(dtype) (usually `return nn::rebuild<" +
                   type_name() + ">(dtype, its constructor's arguments);`), or build it in that dtype yourself and "
                   "call copy_state_from");
}

template <class T>
AnyModule BasicModule<T>::converted(Dtype dtype) const {
  // Building the copy initialises its weights; the values are then replaced,
  // so the generator is put back as it was.
  const Generator saved = generator();
  AnyModule made;
  try {
    made = rebuild(dtype);
  } catch (...) {
    generator() = saved;
    throw;
  }
  generator() = saved;
  const bool wrong_dtype = made.index() != (dtype == Dtype::float64 ? 1u : 0u);
  std::visit(
      [&](const auto& m) {
        if (!m || wrong_dtype)
          throw ValueError(type_name() + "::rebuild(" + (dtype == Dtype::float64 ? "float64" : "float32") +
                           ") returned " + (m ? "a module of the other dtype" : "no module"));
        auto mine = const_cast<BasicModule*>(this)->named_modules();
        auto theirs = m->named_modules();
        std::string paths_here, paths_there;
        for (const auto& [path, sub] : mine) paths_here += path + ":" + sub->type_name() + " ";
        for (const auto& [path, sub] : theirs) paths_there += path + ":" + sub->type_name() + " ";
        if (paths_here != paths_there)
          throw ValueError(type_name() + "::rebuild made a module with other submodules: [" + paths_there +
                           "] instead of [" + paths_here + "]");
        m->copy_state_from(*this);
        for (std::size_t i = 0; i < mine.size(); ++i) theirs[i].second->training_ = mine[i].second->training_;
      },
      made);
  return made;
}

template class BasicModule<float>;
template class BasicModule<double>;
template void BasicModule<float>::copy_state_from(const BasicModule<float>&);
template void BasicModule<float>::copy_state_from(const BasicModule<double>&);
template void BasicModule<double>::copy_state_from(const BasicModule<float>&);
template void BasicModule<double>::copy_state_from(const BasicModule<double>&);

}  // namespace zg::nn
