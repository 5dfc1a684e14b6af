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

 private:
  pb::GraphProto& graph_;
  std::size_t counter_ = 0;
};

void set_attr(pb::NodeProto& n, const std::string& name, std::int64_t v);
void set_attr(pb::NodeProto& n, const std::string& name, float v);
void set_attr(pb::NodeProto& n, const std::string& name, const std::vector<std::int64_t>& v);

// One recorded Function as the table sees it: its tensors' names and shapes,
// and its fields (Note [Op fields]).
struct Call {
  std::string function;
  std::vector<std::string> in, out;
  std::vector<Shape> in_shapes, out_shapes;
  OpFields fields;
  bool dynamic_batch = true;
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
