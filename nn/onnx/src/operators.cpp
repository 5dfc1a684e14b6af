// The operator table: each exportable Function, by name, as ONNX operators
// at opset 17. docs/onnx.md shows the same table in words.
#include <algorithm>
#include <cmath>
#include <limits>

#include "builder.hpp"

namespace zg::onnx {

pb::NodeProto& Builder::node(const std::string& op, const std::vector<std::string>& inputs,
                             const std::vector<std::string>& outputs) {
  pb::NodeProto& n = *graph_.add_node();
  n.set_op_type(op);
  n.set_name(op + "_" + std::to_string(graph_.node_size()));
  for (const std::string& i : inputs) n.add_input(i);
  for (const std::string& o : outputs) n.add_output(o);
  return n;
}

std::string Builder::node1(const std::string& op, const std::vector<std::string>& inputs) {
  const std::string out = fresh(op);
  node(op, inputs, {out});
  return out;
}

std::string Builder::fresh(const std::string& hint) { return "/" + hint + "_" + std::to_string(counter_++); }

std::string Builder::ints(const std::vector<std::int64_t>& values, bool scalar) {
  pb::TensorProto& t = *graph_.add_initializer();
  t.set_name(fresh("ints"));
  t.set_data_type(pb::TensorProto::INT64);
  if (!scalar) t.add_dims(static_cast<std::int64_t>(values.size()));
  for (std::int64_t v : values) t.add_int64_data(v);
  return t.name();
}

std::string Builder::floats(const std::vector<float>& values, const Shape& shape) {
  return initializer(fresh("const"), values.data(), shape);
}

std::string Builder::initializer(const std::string& name, const float* data, const Shape& shape) {
  pb::TensorProto& t = *graph_.add_initializer();
  t.set_name(name);
  t.set_data_type(pb::TensorProto::FLOAT);
  std::size_t n = 1;
  for (std::size_t d : shape) {
    t.add_dims(static_cast<std::int64_t>(d));
    n *= d;
  }
  // raw_data is little-endian, as x86-64 and ARM hold floats.
  t.set_raw_data(reinterpret_cast<const char*>(data), n * sizeof(float));
  return name;
}

void Builder::add_symbol(std::size_t a, std::size_t b, const std::string& input, std::size_t axis,
                         const std::string& name) {
  symbols_.push_back({a, b, input, name, axis, {}});
}

std::string Builder::symbol_name(std::size_t a, std::size_t b) const {
  for (const Symbol& s : symbols_)
    if (s.a == a && s.b == b) return s.name;
  for (const Symbol& s : symbols_)
    for (const Symbol& t : symbols_)
      if (&s < &t && s.a * t.a == a && s.b * t.b == b) return s.name + "*" + t.name;
  return {};
}

std::string Builder::size(std::size_t a, std::size_t b, const std::string& what) {
  if (a == b) return ints({static_cast<std::int64_t>(a)});
  const auto read = [this](Symbol& s) {
    if (s.tensor.empty()) {
      const std::string axis = ints({static_cast<std::int64_t>(s.axis)});
      s.tensor = node1("Gather", {node1("Shape", {s.input}), axis});
    }
    return s.tensor;
  };
  for (Symbol& s : symbols_)
    if (s.a == a && s.b == b) return read(s);
  for (Symbol& s : symbols_)
    for (Symbol& t : symbols_)
      if (&s < &t && s.a * t.a == a && s.b * t.b == b) return node1("Mul", {read(s), read(t)});
  throw ValueError("onnx export: " + what + " has a size that is " + std::to_string(a) + " in the example and " +
                   std::to_string(b) + " in a run on another batch or sequence length, neither of which it follows: the "
                   "file would be right for the example's size only");
}

std::string Builder::shape(const std::vector<std::int64_t>& fixed, const std::vector<bool>& computed, const Shape& a,
                           const Shape& b, const std::string& what) {
  if (std::find(computed.begin(), computed.end(), true) == computed.end()) return ints(fixed);
  std::vector<std::string> parts;
  for (std::size_t d = 0; d < fixed.size(); ++d) parts.push_back(computed[d] ? size(a[d], b.at(d), what) : ints({fixed[d]}));
  const std::string y = fresh("Concat");
  set_attr(node("Concat", parts, {y}), "axis", std::int64_t{0});
  return y;
}

std::string Builder::shape(const Shape& a, const Shape& b, const std::string& what) {
  std::vector<bool> computed(a.size());
  for (std::size_t d = 0; d < a.size(); ++d) computed[d] = a[d] != b.at(d);
  return shape(std::vector<std::int64_t>(a.begin(), a.end()), computed, a, b, what);
}

std::string Builder::scalar_size(std::size_t a, std::size_t b, const std::string& what) {
  if (a == b) return ints({static_cast<std::int64_t>(a)}, true);
  return node1("Squeeze", {size(a, b, what), ints({0})});
}

std::string Builder::above_diagonal(const std::string& rows, const std::string& cols) {
  const std::string zero = ints({0}, true), one = ints({1}, true);
  const std::string i = node1("Unsqueeze", {node1("Range", {zero, rows, one}), ints({1})});  // (rows, 1)
  return node1("Greater", {node1("Range", {zero, cols, one}), i});
}

void set_attr(pb::NodeProto& n, const std::string& name, std::int64_t v) {
  pb::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(pb::AttributeProto::INT);
  a.set_i(v);
}
void set_attr(pb::NodeProto& n, const std::string& name, float v) {
  pb::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(pb::AttributeProto::FLOAT);
  a.set_f(v);
}
void set_attr(pb::NodeProto& n, const std::string& name, const std::vector<std::int64_t>& v) {
  pb::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(pb::AttributeProto::INTS);
  for (std::int64_t x : v) a.add_ints(x);
}

void set_attr(pb::NodeProto& n, const std::string& name, const std::string& v) {
  pb::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(pb::AttributeProto::STRING);
  a.set_s(v);
}
void set_attr(pb::NodeProto& n, const std::string& name, const std::vector<std::string>& v) {
  pb::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(pb::AttributeProto::STRINGS);
  for (const std::string& x : v) a.add_strings(x);
}

const std::vector<double>& Call::field(const std::string& name) const {
  for (const auto& [key, value] : fields)
    if (key == name) return value;
  throw ValueError("onnx export: Function " + function + " has no field '" + name + "' (Note [Op fields])");
}

std::vector<std::int64_t> Call::integers(const std::string& name) const {
  std::vector<std::int64_t> v;
  for (double d : field(name)) v.push_back(static_cast<std::int64_t>(d));
  return v;
}

namespace {

// Note [Dynamic batch in shapes]: Reshape, Expand and SumTo carry the
// example's shape. With a second run (Note [Two runs]) an axis whose size
// differs between the runs is 0 in a Reshape's target ("copy the input's")
// when the input has it at the same place in both runs, 1 in an Expand's
// (the input's size stays), -1 ("whatever is left") when it is the only
// other one, and otherwise read from the input's shape (Builder::size). With
// one run (export_graph), axis 0 of a Reshape's target becomes 0 when it
// equals the input's, -1 otherwise, and every other axis keeps its size.
std::string target_shape(Builder& b, const Call& c, const Shape& in, const Shape& in2, const Shape& out,
                         const Shape& out2) {
  std::vector<std::int64_t> t(out.begin(), out.end());
  std::vector<bool> computed(out.size(), false);
  if (!c.two_runs) {
    if (c.dynamic_batch && !t.empty() && !in.empty()) t[0] = out[0] == in[0] ? 0 : -1;
    return b.ints(t);
  }
  std::vector<std::size_t> left;
  for (std::size_t d = 0; d < out.size(); ++d) {
    if (out[d] == out2[d]) continue;
    if (d < in.size() && in[d] == out[d] && in2[d] == out2[d]) t[d] = 0;
    else left.push_back(d);
  }
  if (left.size() == 1) t[left[0]] = -1;
  if (left.size() > 1)
    for (std::size_t d : left) computed[d] = true;
  return b.shape(t, computed, out, out2, "the target shape " + shape_str(out) + " of " + c.function);
}

Mapping same(const std::string& op) {
  return [op](Builder& b, const Call& c) { b.node(op, c.in, c.out); };
}

Mapping with_constant(const std::string& op, bool constant_first) {
  return [op, constant_first](Builder& b, const Call& c) {
    const std::string k = b.scalar(c.number(c.fields.at(0).first));
    b.node(op, constant_first ? std::vector<std::string>{k, c.in[0]} : std::vector<std::string>{c.in[0], k}, c.out);
  };
}

Mapping with_axis(const std::string& op) {
  return [op](Builder& b, const Call& c) {
    set_attr(b.node(op, c.in, c.out), "axis", static_cast<std::int64_t>(c.number("axis")));
  };
}

// ReduceSum takes its axes as an input at opset 13+, the other reductions as
// an attribute until opset 18. Empty axes reduce over all of them.
Mapping reduce(const std::string& op) {
  return [op](Builder& b, const Call& c) {
    const std::vector<std::int64_t> axes = c.integers("axes");
    std::vector<std::string> in = c.in;
    if (op == "ReduceSum" && !axes.empty()) in.push_back(b.ints(axes));
    pb::NodeProto& n = b.node(op, in, c.out);
    if (op != "ReduceSum" && !axes.empty()) set_attr(n, "axes", axes);
    set_attr(n, "keepdims", static_cast<std::int64_t>(c.number("keepdims")));
  };
}

std::string transposed_last2(Builder& b, const std::string& x, std::size_t rank) {
  std::vector<std::int64_t> perm(rank);
  for (std::size_t i = 0; i < rank; ++i) perm[i] = static_cast<std::int64_t>(i);
  std::swap(perm[rank - 1], perm[rank - 2]);
  const std::string y = b.fresh("Transpose");
  set_attr(b.node("Transpose", {x}, {y}), "perm", perm);
  return y;
}

// Conv2d and the fused ops (their activation and pool follow as nodes).
void conv(Builder& b, const Call& c, const std::string& out) {
  const std::int64_t s = static_cast<std::int64_t>(c.number("stride")), p = static_cast<std::int64_t>(c.number("pad"));
  const Shape& w = c.in_shapes[1];
  pb::NodeProto& n = b.node("Conv", c.in, {out});
  set_attr(n, "kernel_shape", std::vector<std::int64_t>{std::int64_t(w[2]), std::int64_t(w[3])});
  set_attr(n, "strides", std::vector<std::int64_t>{s, s});
  set_attr(n, "pads", std::vector<std::int64_t>{p, p, p, p});
}

void pool(Builder& b, const std::string& op, const std::string& x, const std::string& out, std::int64_t k,
          std::int64_t s, std::int64_t p) {
  pb::NodeProto& n = b.node(op, {x}, {out});
  set_attr(n, "kernel_shape", std::vector<std::int64_t>{k, k});
  set_attr(n, "strides", std::vector<std::int64_t>{s, s});
  set_attr(n, "pads", std::vector<std::int64_t>{p, p, p, p});
  if (op == "AveragePool") set_attr(n, "count_include_pad", std::int64_t{1});  // the window's size divides, padding included
}

Mapping pool2d(const std::string& op) {
  return [op](Builder& b, const Call& c) {
    pool(b, op, c.in[0], c.out[0], std::int64_t(c.number("kernel")), std::int64_t(c.number("stride")),
         std::int64_t(c.number("pad")));
  };
}

// x[index]: one Slice for the slices, a Gather for an index array (the axis
// stays), then a Gather per integer from the last axis back (each removes
// its axis).
void get_item(Builder& b, const Call& c) {
  constexpr std::int64_t kBig = std::numeric_limits<std::int64_t>::max(), kSmall = std::numeric_limits<std::int64_t>::min();
  std::vector<std::int64_t> starts, ends, axes, steps;
  std::vector<std::pair<std::int64_t, std::vector<double>>> arrays, integers;
  for (std::size_t k = 0;; ++k) {
    const std::string key = "index" + std::to_string(k);
    const auto it = std::find_if(c.fields.begin(), c.fields.end(), [&](const auto& f) { return f.first == key; });
    if (it == c.fields.end()) break;
    const std::vector<double>& v = it->second;
    const std::int64_t axis = static_cast<std::int64_t>(k);
    if (v[0] == 0) integers.push_back({axis, {v[1]}});
    if (v[0] == 2) arrays.push_back({axis, std::vector<double>(v.begin() + 1, v.end())});
    if (v[0] == 1) {
      const std::int64_t step = static_cast<std::int64_t>(v[3]);
      if (std::isnan(v[1]) && std::isnan(v[2]) && step == 1) continue;  // the whole axis
      starts.push_back(std::isnan(v[1]) ? (step > 0 ? 0 : kBig) : static_cast<std::int64_t>(v[1]));
      ends.push_back(std::isnan(v[2]) ? (step > 0 ? kBig : kSmall) : static_cast<std::int64_t>(v[2]));
      axes.push_back(axis);
      steps.push_back(step);
    }
  }
  std::vector<std::string> stages{c.in[0]};
  if (!axes.empty())
    stages.push_back(b.node1("Slice", {stages.back(), b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)}));
  for (const auto& [axis, positions] : arrays) {
    std::vector<std::int64_t> idx(positions.begin(), positions.end());
    const std::string y = b.fresh("Gather");
    set_attr(b.node("Gather", {stages.back(), b.ints(idx)}, {y}), "axis", axis);
    stages.push_back(y);
  }
  for (auto it = integers.rbegin(); it != integers.rend(); ++it) {
    const std::string y = b.fresh("Gather");
    set_attr(b.node("Gather", {stages.back(), b.ints({std::int64_t(it->second[0])}, true)}, {y}), "axis", it->first);
    stages.push_back(y);
  }
  b.node("Identity", {stages.back()}, c.out);
}

// softmax(q k^T * scale + mask) v, the mask additive, boolean (0 = masked)
// or causal (built from the scores' shape, so any length runs).
void attention(Builder& b, const Call& c) {
  if (c.number("dropout") != 0)
    throw ValueError("onnx export: ScaledDotProductAttention with dropout has no ONNX form (export in eval mode)");
  const std::size_t rank = c.in_shapes[1].size();
  std::string s = b.node1("MatMul", {c.in[0], transposed_last2(b, c.in[1], rank)});
  s = b.node1("Mul", {s, b.scalar(c.number("scale"))});
  const float inf = std::numeric_limits<float>::infinity();
  if (c.number("masked") != 0) {
    if (c.number("additive") != 0) {
      s = b.node1("Add", {s, c.in[3]});
    } else {
      const std::string keep = b.fresh("Cast");
      set_attr(b.node("Cast", {c.in[3]}, {keep}), "to", std::int64_t{pb::TensorProto::BOOL});
      s = b.node1("Where", {keep, s, b.scalar(-inf)});
    }
  }
  if (c.number("causal") != 0) {  // key j > query i is masked, for the lengths the scores have
    const std::string shape = b.node1("Shape", {s});
    const std::string L = b.node1("Gather", {shape, b.ints({-2}, true)}), S = b.node1("Gather", {shape, b.ints({-1}, true)});
    s = b.node1("Where", {b.above_diagonal(L, S), b.scalar(-inf), s});
  }
  const std::string p = b.fresh("Softmax");
  set_attr(b.node("Softmax", {s}, {p}), "axis", std::int64_t{-1});
  b.node("MatMul", {p, c.in[2]}, c.out);
}

// GELU has no ONNX operator before opset 20: its formula in Erf or Tanh.
void gelu(Builder& b, const Call& c) {
  const std::string& x = c.in[0];
  std::string inner;
  if (c.number("tanh") != 0) {  // tanh(sqrt(2 / pi) (x + 0.044715 x^3))
    const std::string cube = b.node1("Mul", {b.node1("Mul", {x, x}), x});
    const std::string sum = b.node1("Add", {x, b.node1("Mul", {cube, b.scalar(0.044715)})});
    inner = b.node1("Tanh", {b.node1("Mul", {sum, b.scalar(std::sqrt(2 / std::acos(-1.0)))})});
  } else {  // erf(x / sqrt 2)
    inner = b.node1("Erf", {b.node1("Mul", {x, b.scalar(1 / std::sqrt(2.0))})});
  }
  const std::string half_x = b.node1("Mul", {x, b.scalar(0.5)});
  b.node("Mul", {half_x, b.node1("Add", {inner, b.scalar(1.0)})}, c.out);
}

// PyTorch's softplus: x where beta x > threshold, else Softplus(beta x) / beta
// (ONNX's Softplus has neither beta nor threshold).
void softplus(Builder& b, const Call& c) {
  const double beta = c.number("beta");
  const std::string bx = beta == 1 ? c.in[0] : b.node1("Mul", {c.in[0], b.scalar(beta)});
  std::string soft = b.node1("Softplus", {bx});
  if (beta != 1) soft = b.node1("Div", {soft, b.scalar(beta)});
  b.node("Where", {b.node1("Greater", {bx, b.scalar(c.number("threshold"))}), c.in[0], soft}, c.out);
}

// One direction of a recurrent layer (LSTMLayer, GRULayer, RNNLayer: inputs
// x (T, B, I), [h0], [c0], w_ih, w_hh, [b_ih, b_hh] in PyTorch's layout) as
// ONNX's LSTM, GRU or RNN on one direction. ONNX orders the gates i, o, f, c
// (PyTorch i, f, g, o) and z, r, h (PyTorch r, z, n), so the weights' row
// blocks are split and concatenated in its order; its B is Wb and Rb end to
// end; PyTorch's GRU applies the reset gate after the hidden product
// (linear_before_reset). Y (T, 1, B, H) loses its direction axis, Y_h and
// Y_c (1, B, H) theirs.
Mapping recurrent(const std::string& op, std::vector<std::int64_t> order) {
  return [op, order](Builder& b, const Call& c) {
    const bool has_h0 = c.number("initial_h") != 0, has_bias = c.number("bias") != 0;
    const bool has_c0 = op == "LSTM" && c.number("initial_c") != 0;
    const std::int64_t hidden = std::int64_t(c.number("hidden_size"));
    std::size_t k = 1;
    const std::string h0 = has_h0 ? c.in[k++] : "", c0 = has_c0 ? c.in[k++] : "";
    const std::string w_ih = c.in[k], w_hh = c.in[k + 1];
    const auto onnx_order = [&](const std::string& w) {  // gate blocks reordered, rows first
      std::vector<std::string> blocks;
      for (std::size_t g = 0; g < order.size(); ++g) blocks.push_back(b.fresh("Split"));
      set_attr(b.node("Split", {w, b.ints(std::vector<std::int64_t>(order.size(), hidden))}, blocks), "axis",
               std::int64_t{0});
      std::vector<std::string> reordered;
      for (std::int64_t g : order) reordered.push_back(blocks[std::size_t(g)]);
      const std::string y = b.fresh("Concat");
      set_attr(b.node("Concat", reordered, {y}), "axis", std::int64_t{0});
      return y;
    };
    const auto first_axis = [&](const std::string& x) { return b.node1("Unsqueeze", {x, b.ints({0})}); };
    std::vector<std::string> in{c.in[0], first_axis(onnx_order(w_ih)), first_axis(onnx_order(w_hh))};
    if (has_bias) {
      const std::string both = b.fresh("Concat");
      set_attr(b.node("Concat", {onnx_order(c.in[k + 2]), onnx_order(c.in[k + 3])}, {both}), "axis", std::int64_t{0});
      in.push_back(first_axis(both));
    } else {
      in.push_back("");
    }
    in.push_back("");  // sequence_lens: every sequence is T long
    in.push_back(has_h0 ? first_axis(h0) : "");
    if (op == "LSTM") in.push_back(has_c0 ? first_axis(c0) : "");
    while (in.back().empty()) in.pop_back();
    std::vector<std::string> out{b.fresh(op), b.fresh(op)};
    if (op == "LSTM") out.push_back(b.fresh(op));
    pb::NodeProto& n = b.node(op, in, out);
    set_attr(n, "hidden_size", hidden);
    set_attr(n, "direction", std::string(c.number("reverse") != 0 ? "reverse" : "forward"));
    if (op == "GRU") set_attr(n, "linear_before_reset", std::int64_t{1});
    if (op == "RNN") set_attr(n, "activations", std::vector<std::string>{c.number("relu") != 0 ? "Relu" : "Tanh"});
    b.node("Squeeze", {out[0], b.ints({1})}, {c.out[0]});
    for (std::size_t o = 1; o < out.size(); ++o) b.node("Squeeze", {out[o], b.ints({0})}, {c.out[o]});
  };
}

// LayerNormalization (opset 17) over the trailing axes; its Scale input is
// required, so a LayerNorm without weight gets ones.
void layer_norm(Builder& b, const Call& c) {
  const std::vector<std::int64_t> shape = c.integers("normalized_shape");
  const bool has_weight = c.number("weight") != 0, has_bias = c.number("bias") != 0;
  Shape normalized(shape.begin(), shape.end());
  std::size_t n = 1;
  for (std::size_t d : normalized) n *= d;
  std::vector<std::string> in{c.in[0], has_weight ? c.in[1] : b.floats(std::vector<float>(n, 1.0f), normalized)};
  if (has_bias) in.push_back(c.in[has_weight ? 2 : 1]);
  pb::NodeProto& node = b.node("LayerNormalization", in, c.out);
  set_attr(node, "axis", -static_cast<std::int64_t>(shape.size()));
  set_attr(node, "epsilon", static_cast<float>(c.number("eps")));
}

std::map<std::string, Mapping> make_table() {
  std::map<std::string, Mapping> t;
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Neg", "Exp", "Log", "Sqrt", "Sin", "Cos", "Tanh", "Abs",
                         "Sigmoid", "Erf"})
    t[op] = same(op);
  t["ReLU"] = same("Relu");
  t["Maximum"] = same("Max");
  t["Minimum"] = same("Min");
  t["Square"] = [](Builder& b, const Call& c) { b.node("Mul", {c.in[0], c.in[0]}, c.out); };
  t["AddConst"] = with_constant("Add", false);
  t["MulConst"] = with_constant("Mul", false);
  t["RDivConst"] = with_constant("Div", true);
  t["Pow"] = with_constant("Pow", false);
  t["LeakyReLU"] = [](Builder& b, const Call& c) {
    set_attr(b.node("LeakyRelu", c.in, c.out), "alpha", static_cast<float>(c.number("slope")));
  };
  t["Clip"] = [](Builder& b, const Call& c) {
    b.node("Clip", {c.in[0], b.scalar(c.number("lo")), b.scalar(c.number("hi"))}, c.out);
  };
  t["Where"] = [](Builder& b, const Call& c) {
    const std::string cond = b.fresh("Cast");
    set_attr(b.node("Cast", {c.in[0]}, {cond}), "to", std::int64_t{pb::TensorProto::BOOL});
    b.node("Where", {cond, c.in[1], c.in[2]}, c.out);
  };
  t["MaskedFill"] = [](Builder& b, const Call& c) {
    const std::string mask = b.fresh("Cast");
    set_attr(b.node("Cast", {c.in[1]}, {mask}), "to", std::int64_t{pb::TensorProto::BOOL});
    b.node("Where", {mask, b.scalar(c.number("value")), c.in[0]}, c.out);
  };
  t["Softmax"] = with_axis("Softmax");
  t["LogSoftmax"] = with_axis("LogSoftmax");
  t["Concat"] = with_axis("Concat");
  t["Split"] = [](Builder& b, const Call& c) {  // the sizes of both runs (Note [Two runs])
    const std::int64_t rank = std::int64_t(c.in_shapes[0].size()), axis = std::int64_t(c.number("axis"));
    const std::size_t a = std::size_t(axis < 0 ? axis + rank : axis);
    const std::vector<std::int64_t> given = c.integers("sizes");
    Shape sizes(given.begin(), given.end()), sizes2 = sizes;
    for (std::size_t o = 0; o < c.out.size(); ++o)  // an output nobody kept has no shape: its size is fixed
      if (c.out_shapes[o].size() > a && c.out_shapes2[o].size() > a) sizes2[o] = c.out_shapes2[o][a];
    set_attr(b.node("Split", {c.in[0], b.shape(sizes, sizes2, "the sizes of Split")}, c.out), "axis", axis);
  };
  t["Sum"] = reduce("ReduceSum");
  t["Max"] = reduce("ReduceMax");
  t["Min"] = reduce("ReduceMin");
  t["LogSumExp"] = reduce("ReduceLogSumExp");
  t["Norm"] = [](Builder& b, const Call& c) {
    const double p = c.number("p");
    if (p != 1 && p != 2)
      throw ValueError("onnx export: Norm with p=" + number_str(p) + " has no ONNX form (ReduceL1 and ReduceL2 are p=1, 2)");
    reduce(p == 1 ? "ReduceL1" : "ReduceL2")(b, c);
  };
  t["MatMul"] = [](Builder& b, const Call& c) {
    std::string x = c.in[0], w = c.in[1];
    if (c.number("trans_a") != 0) x = transposed_last2(b, x, c.in_shapes[0].size());
    if (c.number("trans_b") != 0) w = transposed_last2(b, w, c.in_shapes[1].size());
    b.node("MatMul", {x, w}, c.out);
  };
  t["Linear"] = [](Builder& b, const Call& c) {
    if (c.in_shapes[0].size() == 2) return void(b.node("Gemm", c.in, c.out));
    if (c.in.size() == 2) return void(b.node("MatMul", c.in, c.out));
    b.node("Add", {b.node1("MatMul", {c.in[0], c.in[1]}), c.in[2]}, c.out);
  };
  t["Reshape"] = [](Builder& b, const Call& c) {
    b.node("Reshape", {c.in[0], target_shape(b, c, c.in_shapes[0], c.in_shapes2[0], c.out_shapes[0], c.out_shapes2[0])},
           c.out);
  };
  t["BroadcastTo"] = [](Builder& b, const Call& c) {
    const Shape &in = c.in_shapes[0], &in2 = c.in_shapes2[0], &out = c.out_shapes[0], &out2 = c.out_shapes2[0];
    std::vector<std::int64_t> shape(out.begin(), out.end());
    std::vector<bool> computed(out.size(), false);
    const std::size_t lead = out.size() - in.size();
    for (std::size_t d = 0; d < out.size(); ++d) {
      const bool kept = d >= lead && in[d - lead] == out[d] && in2[d - lead] == out2[d];
      if (c.two_runs && out[d] != out2[d]) {
        if (kept) shape[d] = 1;
        else computed[d] = true;
      }
      if (!c.two_runs && c.dynamic_batch && d == 0 && lead == 0 && kept) shape[d] = 1;
    }
    b.node("Expand", {c.in[0], b.shape(shape, computed, out, out2, "the shape " + shape_str(out) + " of BroadcastTo")}, c.out);
  };
  t["SumTo"] = [](Builder& b, const Call& c) {
    const Shape& in = c.in_shapes[0];
    const Shape& out = c.out_shapes[0];
    const std::size_t lead = in.size() - out.size();
    std::vector<std::int64_t> axes;
    for (std::size_t i = 0; i < in.size(); ++i)
      if (i < lead || (out[i - lead] == 1 && in[i] != 1)) axes.push_back(static_cast<std::int64_t>(i));
    std::string y = c.in[0];
    if (!axes.empty()) {
      y = b.fresh("ReduceSum");
      set_attr(b.node("ReduceSum", {c.in[0], b.ints(axes)}, {y}), "keepdims", std::int64_t{1});
    }
    const Shape kept(in.begin() + lead, in.end()), kept2(c.in_shapes2[0].begin() + lead, c.in_shapes2[0].end());
    b.node("Reshape", {y, target_shape(b, c, kept, kept2, out, c.out_shapes2[0])}, c.out);
  };
  t["Transpose"] = [](Builder& b, const Call& c) { set_attr(b.node("Transpose", c.in, c.out), "perm", c.integers("perm")); };
  t["Tril"] = [](Builder& b, const Call& c) {
    set_attr(b.node("Trilu", {c.in[0], b.ints({std::int64_t(c.number("diagonal"))}, true)}, c.out), "upper", std::int64_t{0});
  };
  t["Triu"] = [](Builder& b, const Call& c) {
    set_attr(b.node("Trilu", {c.in[0], b.ints({std::int64_t(c.number("diagonal"))}, true)}, c.out), "upper", std::int64_t{1});
  };
  t["GetItem"] = get_item;
  t["Embedding"] = [](Builder& b, const Call& c) {
    const std::string idx = b.fresh("Cast");
    set_attr(b.node("Cast", {c.in[0]}, {idx}), "to", std::int64_t{pb::TensorProto::INT64});
    set_attr(b.node("Gather", {c.in[1], idx}, c.out), "axis", std::int64_t{0});
  };
  t["Conv2d"] = [](Builder& b, const Call& c) { conv(b, c, c.out[0]); };
  t["Conv2dReLU"] = [](Builder& b, const Call& c) {
    const std::string y = b.fresh("Conv");
    conv(b, c, y);
    b.node("Relu", {y}, c.out);
  };
  t["Conv2dReLUMaxPool"] = [](Builder& b, const Call& c) {
    const std::string y = b.fresh("Conv");
    conv(b, c, y);
    pool(b, "MaxPool", b.node1("Relu", {y}), c.out[0], 2, 2, 0);
  };
  t["ConvTranspose2d"] = [](Builder& b, const Call& c) {
    const std::int64_t s = std::int64_t(c.number("stride")), p = std::int64_t(c.number("pad"));
    const Shape &x = c.in_shapes[0], &w = c.in_shapes[1], &y = c.out_shapes[0];
    std::vector<std::int64_t> extra;
    for (std::size_t a : {2, 3})
      extra.push_back(std::int64_t(y[a]) - ((std::int64_t(x[a]) - 1) * s - 2 * p + std::int64_t(w[a])));
    pb::NodeProto& n = b.node("ConvTranspose", c.in, c.out);
    set_attr(n, "kernel_shape", std::vector<std::int64_t>{std::int64_t(w[2]), std::int64_t(w[3])});
    set_attr(n, "strides", std::vector<std::int64_t>{s, s});
    set_attr(n, "pads", std::vector<std::int64_t>{p, p, p, p});
    set_attr(n, "output_padding", extra);
  };
  t["MaxPool2d"] = pool2d("MaxPool");
  t["AvgPool2d"] = pool2d("AveragePool");
  t["ScaledDotProductAttention"] = attention;
  t["GELU"] = gelu;
  t["Softplus"] = softplus;
  t["LSTMLayer"] = recurrent("LSTM", {0, 3, 1, 2});
  t["GRULayer"] = recurrent("GRU", {1, 0, 2});
  t["RNNLayer"] = recurrent("RNN", {0});
  t["LayerNorm"] = layer_norm;
  return t;
}

}  // namespace

const std::map<std::string, Mapping>& mappings() {
  static const std::map<std::string, Mapping> table = make_table();
  return table;
}

}  // namespace zg::onnx
