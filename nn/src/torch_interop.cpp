#include "zerograd/nn/torch_interop.hpp"

#include <map>
#include <set>

#include <xtensor/xmanipulation.hpp>

#include "zerograd/nn/npz.hpp"

namespace zg::nn {

namespace {

// One array as both sides name and shape it (Note [PyTorch layouts]).
struct Slot {
  std::string ours, theirs;
  Shape our_shape, their_shape;
  bool transpose = false;
};

std::string head(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? std::string() : name.substr(0, dot);
}
std::string tail(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}
std::string join(const std::string& path, const std::string& leaf) { return path.empty() ? leaf : path + "." + leaf; }
bool skipped(const std::string& torch_name) { return tail(torch_name) == "num_batches_tracked"; }

// The module's own (not its children's) parameters and buffers.
NamedVariables own_arrays(const Module& m) {
  NamedVariables out;
  for (auto& nv : m.named_parameters())
    if (nv.first.find('.') == std::string::npos) out.push_back(nv);
  for (auto& nv : m.named_buffers())
    if (nv.first.find('.') == std::string::npos) out.push_back(nv);
  return out;
}

struct Owner {
  std::string path;
  const Module* module;
};
// Every submodule holding arrays of its own, depth first in registration
// order (the order of named_parameters and of a PyTorch state_dict).
std::vector<Owner> owners(const Module& root) {
  std::vector<Owner> out, stack = {{"", &root}};
  while (!stack.empty()) {
    Owner o = stack.back();
    stack.pop_back();
    if (!own_arrays(*o.module).empty()) out.push_back(o);
    const auto kids = o.module->children();
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back({join(o.path, it->first), it->second.get()});
  }
  return out;
}

std::string torch_leaf(const Module& m, const std::string& leaf) {
  const bool batch_norm = m.type_name() == "BatchNorm1d" || m.type_name() == "BatchNorm2d";
  if (batch_norm && leaf == "gamma") return "weight";
  if (batch_norm && leaf == "beta") return "bias";
  return leaf;
}

std::string list(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + (n.empty() ? std::string("<root>") : n);
  return s;
}

// The PyTorch module path of each owner: renamed, or the same, or by order
// among the prefixes of torch_names (state_dict order).
std::vector<std::string> their_paths(const std::vector<Owner>& mine, const TorchNames& names,
                                     const std::vector<std::string>& torch_names, const std::string& op) {
  std::vector<std::string> out;
  if (names.by_order) {
    for (const auto& n : torch_names)
      if (!skipped(n) && (out.empty() || out.back() != head(n))) out.push_back(head(n));
    std::vector<std::string> ours;
    for (const auto& o : mine) ours.push_back(o.path);
    if (out.size() != ours.size())
      throw ValueError(op + ": by_order: the state_dict has " + std::to_string(out.size()) +
                       " modules with arrays (" + list(out) + "), the module " + std::to_string(ours.size()) + " (" +
                       list(ours) + ")");
    return out;
  }
  std::map<std::string, std::string> back;
  for (const auto& [theirs, ours] : names.rename)
    if (!back.emplace(ours, theirs).second) throw ValueError(op + ": rename maps two PyTorch paths onto '" + ours + "'");
  for (const auto& o : mine) {
    auto it = back.find(o.path);
    out.push_back(it == back.end() ? o.path : it->second);
  }
  return out;
}

std::vector<Slot> slots(const Module& module, const TorchNames& names, const std::vector<std::string>& torch_names,
                        const std::string& op) {
  const auto mine = owners(module);
  const auto theirs = their_paths(mine, names, torch_names, op);
  std::vector<Slot> out;
  for (std::size_t i = 0; i < mine.size(); ++i)
    for (const auto& [leaf, v] : own_arrays(*mine[i].module)) {
      Slot s{join(mine[i].path, leaf), join(theirs[i], torch_leaf(*mine[i].module, leaf)), v.shape(), v.shape()};
      s.transpose = mine[i].module->type_name() == "Linear" && leaf == "weight";
      if (s.transpose) s.their_shape = {s.our_shape[1], s.our_shape[0]};
      out.push_back(std::move(s));
    }
  return out;
}

Tensor<float> transposed(const Tensor<float>& a) { return Tensor<float>(xt::transpose(a)); }

[[noreturn]] void fail(const std::string& op, const std::vector<std::string>& problems) {
  std::string msg = op + ": nothing was loaded: ";
  msg += listed(problems, "; ");
  throw ValueError(msg);
}

std::string missing(const Slot& s) {
  return quoted(s.theirs) + " (for '" + s.ours + "', PyTorch shape " + shape_str(s.their_shape) + ") is missing";
}
std::string wrong_shape(const Slot& s, const Shape& got) {
  return quoted(s.theirs) + " has shape " + shape_str(got) + ", '" + s.ours + "' needs " + shape_str(s.their_shape) +
         " in PyTorch's layout";
}

}  // namespace

NamedArrays from_torch_state_dict(const Module& module, const NamedArrays& state_dict, const TorchNames& names) {
  const std::string op = "from_torch_state_dict(" + module.type_name() + ")";
  std::vector<std::string> torch_names, problems;
  std::map<std::string, const Tensor<float>*> given;
  for (const auto& [name, a] : state_dict) {
    torch_names.push_back(name);
    if (!given.emplace(name, &a).second) problems.push_back(quoted(name) + " appears twice");
  }
  std::set<std::string> used;
  NamedArrays out;
  for (const auto& s : slots(module, names, torch_names, op)) {
    auto it = given.find(s.theirs);
    if (it == given.end()) {
      problems.push_back(missing(s));
      continue;
    }
    used.insert(s.theirs);
    const Shape got(it->second->shape().begin(), it->second->shape().end());
    if (got != s.their_shape) problems.push_back(wrong_shape(s, got));
    else out.emplace_back(s.ours, s.transpose ? transposed(*it->second) : *it->second);
  }
  for (const auto& n : torch_names)
    if (!used.count(n) && !skipped(n)) problems.push_back(quoted(n) + " is not in the module");
  if (!problems.empty()) fail(op, problems);
  return out;
}

NamedArrays to_torch_state_dict(const Module& module, const TorchNames& names) {
  TorchNames by_name = names;
  by_name.by_order = false;
  const auto state = module.state();
  std::map<std::string, const Tensor<float>*> ours;
  for (const auto& [name, a] : state) ours.emplace(name, &a);
  NamedArrays out;
  for (const auto& s : slots(module, by_name, {}, "to_torch_state_dict(" + module.type_name() + ")")) {
    const Tensor<float>& a = *ours.at(s.ours);
    out.emplace_back(s.theirs, s.transpose ? transposed(a) : a);
  }
  return out;
}

void load_torch_npz(const std::string& path, Module& module, const TorchNames& names) {
  const std::string op = "load_torch_npz('" + path + "')";
  NpzReader reader(path);
  std::vector<std::string> torch_names, problems;
  std::map<std::string, const NpzReader::Member*> members;
  for (const auto& m : reader.members()) {
    torch_names.push_back(m.name);
    if (!members.emplace(m.name, &m).second) problems.push_back(quoted(m.name) + " appears twice");
  }
  std::set<std::string> used;
  NamedArrays state_dict;
  for (const auto& s : slots(module, names, torch_names, op)) {
    auto it = members.find(s.theirs);
    if (it == members.end()) {
      problems.push_back(missing(s));
      continue;
    }
    used.insert(s.theirs);
    std::size_t count = 1;
    for (auto d : s.their_shape) count *= d;
    // An .npy header is at most a few hundred bytes for these ranks.
    if (it->second->size > 4 * count + 4096) {
      problems.push_back(quoted(s.theirs) + " declares " + std::to_string(it->second->size) + " bytes, more than " +
                         shape_str(s.their_shape) + " float32 needs");
      continue;
    }
    const NpyHeader h = reader.header(*it->second);
    if (h.dtype != "<f4") problems.push_back(quoted(s.theirs) + " is " + h.dtype + ", not float32 ('<f4'): save .float()");
    else if (h.shape != s.their_shape) problems.push_back(wrong_shape(s, h.shape));
    else state_dict.emplace_back(s.theirs, reader.read_float(*it->second, h));
  }
  for (const auto& n : torch_names)
    if (!used.count(n) && !skipped(n)) problems.push_back(quoted(n) + " is not in the module");
  if (!problems.empty()) fail(op, problems);
  // state_dict is in slot order, so by_order pairs it as it paired the file.
  module.load_state(from_torch_state_dict(module, state_dict, names), true);
}

void save_torch_npz(const std::string& path, const Module& module, const TorchNames& names) {
  save_npz(path, to_torch_state_dict(module, names));
}

}  // namespace zg::nn
