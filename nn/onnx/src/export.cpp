// ONNX export: walks a recorded forward pass in topological order and writes
// each Function through the operator table (operators.cpp).
#include "zerograd/onnx.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
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

// An input or output: axis 0 is "batch" under dynamic_batch with one run;
// with two, an axis whose size differs between them is named by its symbol
// (Note [Two runs]).
void value_info(Builder& b, pb::ValueInfoProto& v, const std::string& name, const Shape& shape, const Shape* shape2,
                bool dynamic_batch) {
  v.set_name(name);
  pb::TypeProto_Tensor& t = *v.mutable_type()->mutable_tensor_type();
  t.set_elem_type(pb::TensorProto::FLOAT);
  pb::TensorShapeProto& s = *t.mutable_shape();
  for (std::size_t d = 0; d < shape.size(); ++d) {
    pb::TensorShapeProto_Dimension& dim = *s.add_dim();
    const std::string symbol = shape2 && shape2->at(d) != shape[d] ? b.symbol_name(shape[d], shape2->at(d)) : "";
    if (shape2 && shape2->at(d) != shape[d] && symbol.empty())
      throw ValueError("onnx export: axis " + std::to_string(d) + " of '" + name + "' " + shape_str(shape) +
                       " changes with the batch or sequence length but is neither (" + shape_str(*shape2) +
                       " in the second run)");
    if (!symbol.empty()) dim.set_dim_param(symbol);
    else if (!shape2 && d == 0 && dynamic_batch) dim.set_dim_param("batch");
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


// The second recorded run of export_model (Note [Two runs]).
struct Second {
  std::vector<Variable> inputs, outputs;
  std::string sizes;  // "a batch of 4 and a sequence of 7"
};

// Whether two runs' fields agree; a "shape" (Reshape's, BroadcastTo's,
// SumTo's target) and Split's "sizes" may differ: their mappings read both
// runs' shapes.
bool same_fields(const OpFields& a, const OpFields& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first) return false;
    if (a[i].first == "shape" || a[i].first == "sizes") continue;
    if (a[i].second.size() != b[i].second.size()) return false;
    for (std::size_t j = 0; j < a[i].second.size(); ++j) {
      const double x = a[i].second[j], y = b[i].second[j];
      if (x != y && !(std::isnan(x) && std::isnan(y))) return false;
    }
  }
  return true;
}

std::string fields_str(const OpFields& fields) {
  std::vector<std::string> items;
  for (const auto& [name, values] : fields) {
    std::vector<std::string> numbers;
    for (double v : values) numbers.push_back(number_str(v));
    items.push_back(name + "=" + listed(numbers, " ", 8));
  }
  return listed(items, ", ", 12);
}

// Note [Constants that follow the batch]: a constant the forward makes from
// the batch size or the sequence length (a recurrent layer's zero initial
// state, GPT's positions, a causal mask) has another shape in the second
// run (Note [Two runs]). Three kinds are rebuilt in the graph from the
// input's shape, so that the file runs on any size: a fill of one value
// (Expand), the positions 0, 1, ..., n-1 (Range), and a triangle over the
// last two axes, one value where column j > row i and another elsewhere (a
// causal mask, additive or boolean). Any other is an error naming its shapes.
bool is_fill(const Tensor<float>& t, float value) {
  return std::all_of(t.begin(), t.end(), [value](float v) { return v == value; });
}

bool is_positions(const Tensor<float>& t) {
  for (std::size_t i = 0; i < t.size(); ++i)
    if (t.data()[i] != float(i)) return false;
  return t.dimension() == 1;
}

// The triangle's two values (above the diagonal, elsewhere), when t is one.
std::optional<std::pair<float, float>> triangle_values(const Tensor<float>& t) {
  const std::size_t rank = t.dimension();
  if (rank < 2 || t.size() == 0) return {};
  const std::size_t rows = t.shape()[rank - 2], cols = t.shape()[rank - 1];
  if (rows * cols != t.size() || cols < 2) return {};  // leading axes of 1 only, and something above the diagonal
  const float above = t.data()[1], below = t.data()[0];
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j)
      if (t.data()[i * cols + j] != (j > i ? above : below)) return {};
  return std::make_pair(above, below);
}

std::string rebuilt(Builder& b, const Variable& v, const Variable& twin, const std::string& sizes) {
  const Tensor<float> x = v.data(), y = twin.data();
  const Shape &s = v.shape(), &s2 = twin.shape();
  const std::string what = "a constant of shape " + shape_str(s);
  if (s.size() == s2.size() && x.size() > 0 && is_fill(x, x.data()[0]) && is_fill(y, x.data()[0]))
    return b.node1("Expand", {b.scalar(x.data()[0]), b.shape(s, s2, what)});
  if (s.size() == 1 && is_positions(x) && is_positions(y)) {
    const std::string positions = b.fresh("Cast");
    const std::string range = b.node1("Range", {b.ints({0}, true), b.scalar_size(s[0], s2[0], what), b.ints({1}, true)});
    set_attr(b.node("Cast", {range}, {positions}), "to", std::int64_t{pb::TensorProto::FLOAT});
    return positions;
  }
  const auto tri = triangle_values(x);
  if (tri && s.size() == s2.size() && triangle_values(y) == tri) {
    const std::size_t r = s.size();
    const std::string rows = b.scalar_size(s[r - 2], s2[r - 2], what), cols = b.scalar_size(s[r - 1], s2[r - 1], what);
    std::string m = b.node1("Where", {b.above_diagonal(rows, cols), b.scalar(tri->first), b.scalar(tri->second)});
    if (r > 2) {
      std::vector<std::int64_t> lead(r - 2);
      for (std::size_t d = 0; d < r - 2; ++d) lead[d] = std::int64_t(d);
      m = b.node1("Unsqueeze", {m, b.ints(lead)});
    }
    return m;
  }
  throw ValueError("onnx export: the forward makes " + what + " that follows the batch size or the sequence length (" +
                   shape_str(s2) + " for " + sizes + "), such as a value computed outside the graph, and it is neither "
                   "a fill, the positions 0..n-1 nor a causal triangle (Note [Constants that follow the batch]): the "
                   "file would run on the example's sizes only. Export with ExportOptions::dynamic_batch = false and "
                   "no sequence_axis for those");
}

void write_model(const std::vector<Variable>& outputs, const std::vector<Variable>& inputs, const Second* second,
                 const std::string& path, const ExportOptions& options);
}  // namespace

std::vector<std::string> exportable_functions() {
  std::vector<std::string> names;
  for (const auto& [name, mapping] : mappings()) names.push_back(name);
  return names;
}

void export_graph(const std::vector<Variable>& outputs, const std::vector<Variable>& inputs, const std::string& path,
                  const ExportOptions& options) {
  write_model(outputs, inputs, nullptr, path, options);
}

namespace {

void write_model(const std::vector<Variable>& outputs, const std::vector<Variable>& inputs, const Second* second,
                 const std::string& path, const ExportOptions& options) {
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
    const Shape& shape = inputs[i].shape();
    if (second)
      for (std::size_t d = 0; d < shape.size(); ++d)
        if (second->inputs[i].shape()[d] != shape[d])
          b.add_symbol(shape[d], second->inputs[i].shape()[d], name, d,
                       options.sequence_axis && d == *options.sequence_axis ? "sequence" : "batch");
    const Shape shape2 = second ? second->inputs[i].shape() : Shape{};
    value_info(b, *graph.add_input(), name, shape, second ? &shape2 : nullptr, options.dynamic_batch);
  }
  std::unordered_map<const void*, std::string> given;
  for (const auto& [name, v] : options.names) given.emplace(v.id(), name);
  std::size_t constants = 0;
  // A leaf that is not an input: an initializer with its values, or rebuilt
  // in the graph when its twin in the second run has another shape.
  const auto leaf_name = [&](const Variable& v, const Variable* twin) {
    if (twin && twin->shape() != v.shape()) return rebuilt(b, v, *twin, second->sizes);
    std::string name;
    if (auto it = given.find(v.id()); it != given.end()) name = it->second;
    else if (!v.name().empty() && !taken.count(v.name())) name = v.name();
    else name = "const_" + std::to_string(constants++);
    taken.insert(name);
    const Tensor<float> data = v.data();  // contiguous, row-major
    return b.initializer(name, data.data(), v.shape());
  };
  const auto name_of = [&](const Variable& v, const Variable* twin) {
    if (auto it = names.find(v.id()); it != names.end()) return it->second;
    if (v.creator())
      throw ValueError("onnx export: a Function's input was made by a Function outside the graph walked");
    const std::string name = leaf_name(v, twin);
    return names[v.id()] = name;
  };

  const std::vector<std::shared_ptr<Fn>> fs = functions_of(outputs);
  const std::vector<std::shared_ptr<Fn>> fs2 = second ? functions_of(second->outputs) : std::vector<std::shared_ptr<Fn>>{};
  const auto& table = mappings();
  for (std::size_t k = 0; k < fs.size(); ++k) {
    const Fn& f = *fs[k];
    Call c;
    c.function = f.name();
    c.dynamic_batch = options.dynamic_batch;
    c.two_runs = second != nullptr;
    for (std::size_t i = 0; i < f.num_inputs(); ++i) c.in_shapes.push_back(f.input_shape(i));
    const auto mapping = table.find(c.function);
    if (mapping == table.end()) throw ValueError(unsupported(f, k, fs.size(), c.in_shapes));
    c.fields = f.fields();
    const Fn* f2 = second && k < fs2.size() ? fs2[k].get() : nullptr;
    if (second && (fs.size() != fs2.size() || f2->name() != c.function || f2->num_inputs() != f.num_inputs() ||
                   f2->num_outputs() != f.num_outputs()))
      throw ValueError("onnx export: the forward runs other Functions for " + second->sizes + " (" +
                       std::to_string(fs2.size()) + " against the example's " + std::to_string(fs.size()) + "; node " +
                       std::to_string(k + 1) + " is " + c.function + " in the example, " +
                       (f2 ? f2->name() : std::string("missing")) + " there), such as a loop of a recurrent cell "
                       "over the sequence (Note [Two runs]). Export with ExportOptions::dynamic_batch = false and no "
                       "sequence_axis for the example's sizes");
    if (f2 && !same_fields(c.fields, f2->fields()))
      throw ValueError("onnx export: Function " + c.function + " (node " + std::to_string(k + 1) + ") runs with " +
                       fields_str(c.fields) + " on the example and " + fields_str(f2->fields()) + " for " +
                       second->sizes + ": a file would be right for the example's sizes only (Note [Two runs])");
    c.in_shapes2 = c.in_shapes;
    if (f2)
      for (std::size_t i = 0; i < f.num_inputs(); ++i) c.in_shapes2[i] = f2->input_shape(i);
    const Variables<float> in = f.inputs();
    const Variables<float> in2 = f2 ? f2->inputs() : Variables<float>{};
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (!in[i].defined())
        throw ValueError("onnx export: input " + std::to_string(i) + " of Function " + c.function + " (node " +
                         std::to_string(k + 1) + ") was freed: record the forward under a KeepIntermediatesGuard");
      c.in.push_back(name_of(in[i], f2 && in2[i].defined() ? &in2[i] : nullptr));
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
      const Variable y2 = f2 ? f2->output(o) : Variable();
      c.out_shapes2.push_back(y2.defined() ? y2.shape() : c.out_shapes.back());
      c.out.push_back(name);
    }
    mapping->second(b, c);
  }

  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const std::string name = default_name(options.output_names, i, "output");
    if (taken.count(name)) throw ValueError("onnx export: output name '" + name + "' is also an input or a constant");
    b.node("Identity", {name_of(outputs[i], nullptr)}, {name});
    const Shape shape2 = second ? second->outputs[i].shape() : Shape{};
    value_info(b, *graph.add_output(), name, outputs[i].shape(), second ? &shape2 : nullptr, options.dynamic_batch);
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

// The example for the second run (Note [Two runs]): a sequence one step
// shorter (3 steps for 1) and a batch one row larger, or two when one would
// leave batch times sequence unchanged, so that no two sizes, nor their
// product, are alike in both runs.
Tensor<float> resized(const Variable& example, const ExportOptions& options, std::string& sizes) {
  Variable x = example;
  const std::size_t b = x.shape()[0];
  std::size_t steps = 1, steps2 = 1;
  if (options.sequence_axis) {
    const std::size_t axis = *options.sequence_axis;
    steps = x.shape()[axis];
    std::vector<Index> index(axis + 1);
    index[axis] = Index(Slice{0, std::ptrdiff_t(steps) - 1});
    x = steps > 1 ? get_item(x, index) : concat(std::vector<Variable>{x, x, x}, std::ptrdiff_t(axis));
    steps2 = x.shape()[axis];
    sizes = "a sequence of " + std::to_string(steps2);
  }
  if (options.dynamic_batch) {
    const std::size_t extra = (b + 1) * steps2 == b * steps ? 2 : 1;
    std::vector<Variable> rows{x};
    for (std::size_t i = 0; i < extra; ++i) rows.push_back(get_item(x, {Index(Slice{0, 1})}));
    x = concat(rows, 0);
    sizes = "a batch of " + std::to_string(b + extra) + (sizes.empty() ? "" : " and " + sizes);
  }
  return x.data();
}

}  // namespace

// Note [Two runs]: export_model records the forward twice, on the example
// and on one with another batch size (dynamic_batch) and sequence length
// (sequence_axis), and walks both graphs side by side.
// The same Functions with the same fields must run in both, or export
// refuses, naming the first that differs (a loop of a recurrent cell over
// the steps, a Split of the sequence). A size that differs between the runs
// is a symbol read from the input's shape in the graph: "batch" and
// "sequence" in the inputs' and outputs' shapes, and wherever Reshape,
// Expand and SumTo carry a shape (Note [Dynamic batch in shapes]);
// constants that differ are rebuilt in the graph or refused (Note
// [Constants that follow the batch]). So the file runs on any batch size and
// sequence length, as the forward would.
void export_model(nn::Module& model, const Variable& example_input, const std::string& path,
                  const ExportOptions& options) {
  const std::size_t rank = example_input.ndim();
  if (options.sequence_axis && (*options.sequence_axis >= rank || *options.sequence_axis == 0))
    throw ValueError("onnx export: sequence_axis " + std::to_string(*options.sequence_axis) +
                     " is not an axis after the batch of the example input " + shape_str(example_input.shape()));
  if (options.sequence_axis && example_input.shape()[*options.sequence_axis] == 0)
    throw ValueError("onnx export: the example input " + shape_str(example_input.shape()) + " has an empty sequence");
  const std::pair<Variable, Variable> run = record(model, example_input.data());
  ExportOptions o = options;
  for (auto named : {model.named_parameters(), model.named_buffers()})
    o.names.insert(o.names.end(), named.begin(), named.end());
  const bool batch = options.dynamic_batch && rank > 0 && example_input.shape()[0] > 0;
  if (!batch && !options.sequence_axis) return write_model({run.second}, {run.first}, nullptr, path, o);
  o.dynamic_batch = batch;
  Second second;
  const std::pair<Variable, Variable> other = record(model, resized(example_input, o, second.sizes));
  second.inputs = {other.first};
  second.outputs = {other.second};
  write_model({run.second}, {run.first}, &second, path, o);
}

}  // namespace zg::onnx
