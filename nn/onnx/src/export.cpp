// ONNX export: walks a recorded forward pass in topological order and writes
// each Function through the operator table (operators.cpp).
#include "zerograd/onnx.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include <onnx/checker.h>

#include "zerograd/dot.hpp"
#include "zerograd/ops.hpp"

#include "builder.hpp"

namespace zg::onnx {

// Note [Export by Function name]: the exporter reads a recorded graph, not
// the modules: a layer is whatever Functions its forward ran (BatchNorm in
// eval mode is Sub/Mul/Add on its running statistics, GELU is Erf between
// MulConst and AddConst), so every model built from exportable Functions
// exports, a user's own modules included. Each Function maps to ONNX
// operators by its name() through one table (operators.cpp), reading its
// settings through fields() (Note [Op fields]); the ops' own files know
// nothing of ONNX. Values computed outside the graph (constants, comparison
// masks) are initializers with the example's values.
namespace {

using Fn = Function<float>;

std::string default_name(const std::vector<std::string>& given, std::size_t i, const std::string& stem) {
  if (i < given.size() && !given[i].empty()) return given[i];
  return i == 0 ? stem : stem + std::to_string(i);
}

void value_info(pb::ValueInfoProto& v, const std::string& name, const Shape& shape, bool dynamic_batch) {
  v.set_name(name);
  pb::TypeProto_Tensor& t = *v.mutable_type()->mutable_tensor_type();
  t.set_elem_type(pb::TensorProto::FLOAT);
  pb::TensorShapeProto& s = *t.mutable_shape();
  for (std::size_t d = 0; d < shape.size(); ++d) {
    pb::TensorShapeProto_Dimension& dim = *s.add_dim();
    if (d == 0 && dynamic_batch) dim.set_dim_param("batch");
    else dim.set_dim_value(static_cast<std::int64_t>(shape[d]));
  }
}

std::string shapes_str(const std::vector<Shape>& shapes) {
  std::string s;
  for (const Shape& x : shapes) s += (s.empty() ? "" : ", ") + shape_str(x);
  return s;
}

// Every Function the outputs depend on, inputs before the Functions that
// read them (generation order; ties keep discovery order).
std::vector<std::shared_ptr<Fn>> functions_of(const std::vector<Variable>& outputs) {
  std::vector<std::shared_ptr<Fn>> all, todo;
  std::unordered_set<const Fn*> seen;
  for (const Variable& y : outputs)
    if (y.creator()) todo.push_back(y.creator());
  while (!todo.empty()) {
    std::shared_ptr<Fn> f = std::move(todo.back());
    todo.pop_back();
    if (!seen.insert(f.get()).second) continue;
    all.push_back(f);
    for (std::size_t i = 0; i < f->num_inputs(); ++i)
      if (f->input_creator(i)) todo.push_back(f->input_creator(i));
  }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a->generation() < b->generation(); });
  return all;
}

std::string unsupported(const Fn& f, std::size_t k, std::size_t count, const std::vector<Shape>& in_shapes) {
  return "onnx export: Function " + f.name() + " (node " + std::to_string(k + 1) + " of " + std::to_string(count) +
         ", inputs " + shapes_str(in_shapes) + ") has no ONNX mapping; exportable Functions: " +
         listed(exportable_functions(), ", ", 100);
}

}  // namespace

std::vector<std::string> exportable_functions() {
  std::vector<std::string> names;
  for (const auto& [name, mapping] : mappings()) names.push_back(name);
  return names;
}

void export_graph(const std::vector<Variable>& outputs, const std::vector<Variable>& inputs, const std::string& path,
                  const ExportOptions& options) {
  if (outputs.empty() || inputs.empty()) throw ValueError("onnx export: needs at least one input and one output");
  pb::ModelProto model;
  model.set_ir_version(8);  // the IR version of opset 17
  model.set_producer_name("zerograd");
  pb::OperatorSetIdProto& opset = *model.add_opset_import();
  opset.set_domain("");
  opset.set_version(kOpset);
  pb::GraphProto& graph = *model.mutable_graph();
  graph.set_name(options.graph_name);
  Builder b(graph);

  std::unordered_map<const void*, std::string> names;  // node -> tensor name
  std::unordered_set<std::string> taken;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = default_name(options.input_names, i, "input");
    if (!names.emplace(inputs[i].id(), name).second)
      throw ValueError("onnx export: input " + std::to_string(i) + " is given twice");
    taken.insert(name);
    value_info(*graph.add_input(), name, inputs[i].shape(), options.dynamic_batch);
  }
  std::unordered_map<const void*, std::string> given;
  for (const auto& [name, v] : options.names) given.emplace(v.id(), name);
  std::size_t constants = 0;
  // A leaf that is not an input: an initializer with its values.
  const auto leaf_name = [&](const Variable& v) {
    std::string name;
    if (auto it = given.find(v.id()); it != given.end()) name = it->second;
    else if (!v.name().empty() && !taken.count(v.name())) name = v.name();
    else name = "const_" + std::to_string(constants++);
    taken.insert(name);
    const Tensor<float> data = v.data();  // contiguous, row-major
    return b.initializer(name, data.data(), v.shape());
  };
  const auto name_of = [&](const Variable& v) {
    if (auto it = names.find(v.id()); it != names.end()) return it->second;
    if (v.creator())
      throw ValueError("onnx export: a Function's input was made by a Function outside the graph walked");
    return names[v.id()] = leaf_name(v);
  };

  const std::vector<std::shared_ptr<Fn>> fs = functions_of(outputs);
  const auto& table = mappings();
  for (std::size_t k = 0; k < fs.size(); ++k) {
    const Fn& f = *fs[k];
    Call c;
    c.function = f.name();
    c.dynamic_batch = options.dynamic_batch;
    for (std::size_t i = 0; i < f.num_inputs(); ++i) c.in_shapes.push_back(f.input_shape(i));
    const auto mapping = table.find(c.function);
    if (mapping == table.end()) throw ValueError(unsupported(f, k, fs.size(), c.in_shapes));
    const Variables<float> in = f.inputs();
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (!in[i].defined())
        throw ValueError("onnx export: input " + std::to_string(i) + " of Function " + c.function + " (node " +
                         std::to_string(k + 1) + ") was freed: record the forward under a KeepIntermediatesGuard");
      c.in.push_back(name_of(in[i]));
    }
    for (std::size_t o = 0; o < f.num_outputs(); ++o) {
      const Variable y = f.output(o);
      std::string name = b.fresh(c.function);
      if (y.defined()) {
        names[y.id()] = name;
        c.out_shapes.push_back(y.shape());
      } else {
        c.out_shapes.push_back({});
      }
      c.out.push_back(name);
    }
    c.fields = f.fields();
    mapping->second(b, c);
  }

  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const std::string name = default_name(options.output_names, i, "output");
    if (taken.count(name)) throw ValueError("onnx export: output name '" + name + "' is also an input or a constant");
    b.node("Identity", {name_of(outputs[i])}, {name});
    value_info(*graph.add_output(), name, outputs[i].shape(), options.dynamic_batch);
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    bool read = false;
    for (const pb::NodeProto& n : graph.node())
      read = read || std::count(n.input().begin(), n.input().end(), graph.input(int(i)).name()) > 0;
    if (!read)
      throw ValueError("onnx export: the outputs do not depend on input '" + graph.input(int(i)).name() +
                       "': record the forward with the input's requires_grad_() set");
  }

  try {
    ::ONNX_NAMESPACE::checker::check_model(model);
  } catch (const std::exception& e) {
    throw ValueError(std::string("onnx export: ONNX's checker rejects the model: ") + e.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes))
    throw ValueError("onnx export: the model does not serialize (over 2 GB of parameters?)");
  write_text_file(path, bytes);
}

namespace {

// One recorded eval-mode forward of model on a copy of x.
std::pair<Variable, Variable> record(nn::Module& model, const Tensor<float>& x) {
  nn::EvalModeGuard eval;
  EnableGradGuard grad;
  KeepIntermediatesGuard keep;
  // A new leaf that needs a gradient: every op that reads the input is recorded.
  Variable in = Variable(Tensor<float>(x));
  in.requires_grad_();
  return {in, model(in)};
}

// The constants a forward made (leaves that are neither the input nor named), in walk order.
std::vector<Variable> constants_of(const std::pair<Variable, Variable>& run, const nn::NamedVariables& named) {
  std::unordered_set<const void*> skip{run.first.id()};
  for (const auto& [name, v] : named) skip.insert(v.id());
  std::vector<Variable> out;
  for (const auto& f : functions_of({run.second}))
    for (const Variable& v : f->inputs())
      if (v.defined() && !v.creator() && skip.insert(v.id()).second) out.push_back(v);
  return out;
}

// Note [Constants that follow the batch]: a forward that makes a constant
// from the batch size (a recurrent layer's zero initial state) gives a file
// that runs on the example's batch size only. export_model records a second
// forward on one more row and refuses, naming the constant, when any
// constant's shape differs between the two.
void check_batch_free(nn::Module& model, const Variable& example, const std::pair<Variable, Variable>& run,
                      const nn::NamedVariables& named) {
  const Variable more = concat(std::vector<Variable>{example, get_item(example, {Index(Slice{0, 1})})}, 0);
  const std::pair<Variable, Variable> other = record(model, more.data());
  const std::vector<Variable> a = constants_of(run, named), b = constants_of(other, named);
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size() && i < b.size() && a[i].shape() == b[i].shape()) continue;
    const std::string what = i < a.size() ? "a constant of shape " + shape_str(a[i].shape()) : "a constant";
    throw ValueError("onnx export: the forward makes " + what + " that follows the batch size (" +
                     (i < b.size() ? shape_str(b[i].shape()) : std::string("missing")) + " for a batch of " +
                     std::to_string(more.shape()[0]) + "), such as a recurrent layer's zero initial state: the file "
                     "would run on a batch of " + std::to_string(example.shape()[0]) +
                     " only. Export with ExportOptions::dynamic_batch = false for that fixed batch size");
  }
}

}  // namespace

void export_model(nn::Module& model, const Variable& example_input, const std::string& path,
                  const ExportOptions& options) {
  const std::pair<Variable, Variable> run = record(model, example_input.data());
  ExportOptions o = options;
  for (auto named : {model.named_parameters(), model.named_buffers()})
    o.names.insert(o.names.end(), named.begin(), named.end());
  if (options.dynamic_batch && example_input.ndim() > 0 && example_input.shape()[0] > 0)
    check_batch_free(model, example_input, run, o.names);
  export_graph({run.second}, {run.first}, path, o);
}

}  // namespace zg::onnx
