#pragma once
// What the operator table (operators.cpp) writes ONNX nodes with.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "zerograd/variable.hpp"

namespace zg::onnx {

namespace pb = ::ONNX_NAMESPACE;

// A graph under construction: nodes, and constants as initializers.
class Builder {
 public:
  explicit Builder(pb::GraphProto& graph) : graph_(graph) {}
  // A node op(inputs) -> outputs; attributes are added on the returned node.
  pb::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                      const std::vector<std::string>& outputs);
  // A node with one new output, whose name it returns.
  std::string node1(const std::string& op, const std::vector<std::string>& inputs);
  std::string fresh(const std::string& hint);  // a name no other tensor has
  std::string ints(const std::vector<std::int64_t>& values, bool scalar = false);  // int64 constant
  std::string floats(const std::vector<float>& values, const Shape& shape);      // float constant
  std::string scalar(double value) { return floats({static_cast<float>(value)}, {}); }
  // A float initializer named name; the name is returned.
  std::string initializer(const std::string& name, const float* data, const Shape& shape);

  // Sizes that differ between the two recorded runs (Note [Two runs]): axis
  // of the graph input named input is a in the first run and b in the second.
  void add_symbol(std::size_t a, std::size_t b, const std::string& input, std::size_t axis, const std::string& name);
  // The symbol's name for a size that is a in the first run and b in the
  // second ("batch", "sequence", "batch*sequence"), empty when none is.
  std::string symbol_name(std::size_t a, std::size_t b) const;
  // The size as a 1-D int64 tensor of one element: a constant when a == b,
  // else read from the input's shape (or the product of two such sizes);
  // a ValueError naming what when no symbol is a, b.
  std::string size(std::size_t a, std::size_t b, const std::string& what);
  // A shape (a in the first run, b in the second) as a 1-D int64 tensor:
  // fixed[d], or size(a[d], b[d]) where computed[d].
  std::string shape(const std::vector<std::int64_t>& fixed, const std::vector<bool>& computed, const Shape& a,
                    const Shape& b, const std::string& what);
  std::string shape(const Shape& a, const Shape& b, const std::string& what);  // computed where they differ
  std::string scalar_size(std::size_t a, std::size_t b, const std::string& what);  // as a 0-D tensor
  // (rows, cols) bool, true where column j > row i; rows, cols 0-D int64.
  std::string above_diagonal(const std::string& rows, const std::string& cols);

 private:
  struct Symbol {
    std::size_t a, b;
    std::string input, name;
    std::size_t axis;
    std::string tensor;  // made on first use
  };
  pb::GraphProto& graph_;
  std::size_t counter_ = 0;
  std::vector<Symbol> symbols_;
};

void set_attr(pb::NodeProto& n, const std::string& name, std::int64_t v);
void set_attr(pb::NodeProto& n, const std::string& name, float v);
void set_attr(pb::NodeProto& n, const std::string& name, const std::vector<std::int64_t>& v);
void set_attr(pb::NodeProto& n, const std::string& name, const std::string& v);
void set_attr(pb::NodeProto& n, const std::string& name, const std::vector<std::string>& v);

// One recorded Function as the table sees it: its tensors' names and shapes,
// and its fields (Note [Op fields]).
struct Call {
  std::string function;
  std::vector<std::string> in, out;
  std::vector<Shape> in_shapes, out_shapes;
  // The same in the second run (Note [Two runs]); equal to the above when
  // there is none.
  std::vector<Shape> in_shapes2, out_shapes2;
  OpFields fields;
  bool dynamic_batch = true;
  bool two_runs = false;  // in_shapes2, out_shapes2 come from a second run
  const std::vector<double>& field(const std::string& name) const;  // ValueError when missing
  double number(const std::string& name) const { return field(name).at(0); }
  std::vector<std::int64_t> integers(const std::string& name) const;
};

// Writes the ONNX nodes of one Function: they read call.in and their last
// results are named call.out.
using Mapping = std::function<void(Builder&, const Call&)>;
// Function name -> mapping (operators.cpp).
const std::map<std::string, Mapping>& mappings();

}  // namespace zg::onnx
